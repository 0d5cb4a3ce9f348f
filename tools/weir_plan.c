/* SPDX-License-Identifier: MIT */
/*
 * tools/weir_plan.c - `weir-plan`: look at a saved plan file.
 *
 *   weir-plan show FILE   channels and per-actor schedules, human-readable
 *   weir-plan json FILE   canonical JSON (what the hash covers)
 *   weir-plan dot FILE    Graphviz DOT (pipe into `dot -Tsvg`)
 *   weir-plan hash FILE   the plan hash, 16 hex digits
 *   weir-plan svg FILE    SVG: the graph (Graphviz's dot, if installed) beside the schedules
 *
 * Every command loads the file through weir__plan_load(), so it also
 * validates it: a corrupt or inconsistent file is reported, not shown.
 * Exit status: 0 ok, 1 the file could not be loaded or output failed,
 * 2 usage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir/common.h>

#include "compiler/plan.h"
#include "tools/plan_svg.h"

static void usage(FILE *f)
{
    fputs("usage: weir-plan show|json|dot|hash|svg FILE\n"
          "  show  channels and per-actor schedules\n"
          "  json  canonical JSON\n"
          "  dot   Graphviz DOT\n"
          "  hash  plan hash (16 hex digits)\n"
          "  svg   SVG: the graph (via Graphviz's dot) beside the per-actor schedules\n",
          f);
}

static int run(const char *cmd, struct weir__plan *p)
{
    if (!strcmp(cmd, "show"))
        return weir__plan_print(p, stdout);
    if (!strcmp(cmd, "dot"))
        return weir__plan_dot(p, stdout);
    if (!strcmp(cmd, "svg"))
        return weir_plan_svg(p, stdout) < 0 ? -2 : 0;
    if (!strcmp(cmd, "hash")) {
        printf("%016" PRIx64 "\n", weir__plan_hash(p));
        return 0;
    }
    char *json = weir__plan_json(p);
    if (!json)
        return -1;
    puts(json);
    free(json);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    static const char *const cmds[] = {"show", "json", "dot", "hash", "svg"};
    int known = 0;
    for (size_t i = 0; argc == 3 && i < sizeof cmds / sizeof *cmds; i++)
        known |= !strcmp(argv[1], cmds[i]);
    if (!known) {
        if (argc >= 2 && argc <= 3)
            fprintf(stderr, "weir-plan: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return 2;
    }
    struct weir__plan *p = NULL;
    if (weir__plan_load(argv[2], &p) < 0) {
        fprintf(stderr, "weir-plan: %s\n", weir_errmsg());
        return 1;
    }
    int ret = run(argv[1], p);
    weir__plan_free(p);
    if (ret == -2)
        return 1; /* reason already on stderr */
    if (ret < 0) {
        fprintf(stderr, "weir-plan: %s\n", weir_errmsg());
        return 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "weir-plan: writing the output failed\n");
        return 1;
    }
    return 0;
}
