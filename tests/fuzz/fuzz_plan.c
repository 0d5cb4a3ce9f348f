/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_plan.c - libFuzzer target for the plan loader
 * (compiler/plan_codec.cc: FlatBuffers verifier, then weir__plan_validate).
 *
 * Any input must either be refused with -EBADMSG (and a message) or decode
 * into a plan that survives everything a loaded plan is used for: JSON,
 * hash, text and DOT, and an encode -> decode round trip that gives back
 * the same canonical JSON. Anything else traps.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/weir.h>

#include "compiler/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct weir__plan *p = NULL;
    int rc = weir__plan_decode(data, size, &p);
    if (rc < 0) {
        if (rc != -EBADMSG && rc != -ENOMEM)
            __builtin_trap(); /* an error the codec does not document */
        if (rc == -EBADMSG && weir_errmsg()[0] == '\0')
            __builtin_trap(); /* refused without saying why */
        return 0;
    }
    char *json = weir__plan_json(p);
    if (!json)
        __builtin_trap();
    (void)weir__plan_hash(p);
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) {
        if (weir__plan_print(p, devnull) < 0 || weir__plan_dot(p, devnull) < 0)
            __builtin_trap();
        fclose(devnull);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (weir__plan_encode(p, &buf, &len) < 0)
        __builtin_trap();
    struct weir__plan *q = NULL;
    if (weir__plan_decode(buf, len, &q) < 0)
        __builtin_trap(); /* what we wrote we must read back */
    char *json2 = weir__plan_json(q);
    if (!json2 || strcmp(json, json2) != 0)
        __builtin_trap(); /* the round trip changed the plan */
    free(json2);
    free(json);
    free(buf);
    weir__plan_free(q);
    weir__plan_free(p);
    return 0;
}
