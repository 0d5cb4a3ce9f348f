/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_segment.c - libFuzzer target for opening a named channel
 * whose segment holds arbitrary bytes (a corrupt or foreign /dev/shm file).
 *
 * The input becomes the whole content of /dev/shm/weir.<name>; then
 * weir_chan_open() must either refuse it (a negative errno surfaced as NULL
 * with a message) or return a channel on which a reader can register, poll
 * and leave without a crash, a hang or a read outside the mapping. The
 * segment is removed after every input.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <weir/weir.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[64], path[80];
    snprintf(name, sizeof name, "fuzz-seg-%d", (int)getpid());
    snprintf(path, sizeof path, "/weir.%s", name);
    int fd = shm_open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        __builtin_trap();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            __builtin_trap();
        off += (size_t)n;
    }
    close(fd);

    weir_chan *c = weir_chan_open(name);
    if (!c) {
        if (weir_errmsg()[0] == '\0')
            __builtin_trap(); /* refused without saying why */
    } else {
        int r = weir_chan_register_reader(c);
        if (r >= 0) {
            size_t len = 0;
            const void *m = weir_chan_read(c, r, &len, 0);
            if (m)
                weir_chan_release(c, r);
            weir_chan_deregister_reader(c, r);
        }
        weir_chan_free(c);
    }
    shm_unlink(path);
    return 0;
}
