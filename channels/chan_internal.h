/* SPDX-License-Identifier: MIT */
/* channels/chan_internal.h - calls of the channel used by the engine, not public. */
#ifndef WEIR_CHAN_INTERNAL_H
#define WEIR_CHAN_INTERNAL_H

#include <weir/chan.h>

/* The engine's shared notes and flags use the same named atomics. */
#include "channels/atomics.h"

/* Writer: drop the current reservation (nothing is published, no sequence
 * number is used). 0, or -EINVAL if nothing is reserved. */
int weir__chan_unreserve(weir_chan *w);

/* Fork support (engine/proc.c): see ring.c. */
void weir__chan_after_fork(weir_chan *c);
int weir__chan_writer_resync(weir_chan *c);
int weir__chan_reader_resync(weir_chan *c, int id);
int weir__chan_claim_reader(weir_chan *c, int id);
uint64_t weir__chan_write_seq(const weir_chan *c);
uint64_t weir__chan_read_seq(const weir_chan *c, int id);
void weir__chan_set_label(weir_chan *c, const char *label);
/* Cheap readiness checks, so callers can skip computing a deadline (ring.c). */
int weir__chan_can_read(weir_chan *c, int id);
int weir__chan_can_reserve(weir_chan *c, size_t len);

#endif
