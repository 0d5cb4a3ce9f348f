/* SPDX-License-Identifier: MIT */
/* channels/chan_internal.h - calls of the channel used by the engine, not public. */
#ifndef WEIR_CHAN_INTERNAL_H
#define WEIR_CHAN_INTERNAL_H

#include <weir/chan.h>

/* Writer: drop the current reservation (nothing is published, no sequence
 * number is used). 0, or -EINVAL if nothing is reserved. */
int weir__chan_unreserve(weir_chan *w);

/* Writer: bytes reserved by the current reservation's slot (capacity). */
size_t weir__chan_slot_bytes(const weir_chan *w);

#endif
