/* SPDX-License-Identifier: MIT */
/*
 * tools/plan_svg.c - `weir-plan svg FILE`: the graph (Graphviz's `dot -Tsvg`
 * on the plan's DOT, nested as an <svg> element) on the left, the text of
 * `weir-plan show` (channels and per-actor schedules) on the right, in
 * monospace. Without `dot` the SVG holds the text only and stderr says why.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/plan_svg.h"

static int on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return 0;
    char dir[4096];
    for (const char *s = path; *s;) {
        size_t n = strcspn(s, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, s, prog);
        if (n && access(dir, X_OK) == 0)
            return 1;
        s += n + (s[n] == ':');
    }
    return 0;
}

/* The graph as SVG from dot (malloc), or NULL. */
static char *run_dot(struct weir__plan *p, double *w, double *h)
{
    char tmpl[] = "/tmp/weir-plan-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "w");
    if (!f || weir__plan_dot(p, f) < 0 || fclose(f) != 0) {
        unlink(tmpl);
        return NULL;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "dot -Tsvg %s", tmpl);
    FILE *pp = popen(cmd, "r");
    char *buf = NULL;
    size_t n = 0, cap = 0, k;
    if (pp) {
        char chunk[4096];
        while ((k = fread(chunk, 1, sizeof chunk, pp)) > 0) {
            if (n + k + 1 > cap) {
                cap = (n + k + 1) * 2;
                char *nb = realloc(buf, cap);
                if (!nb)
                    break;
                buf = nb;
            }
            memcpy(buf + n, chunk, k);
            n += k;
        }
        int st = pclose(pp);
        if (st != 0) {
            free(buf);
            buf = NULL;
        }
    }
    unlink(tmpl);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    char *svg = strstr(buf, "<svg");
    if (!svg || sscanf(strstr(svg, "width=\"") ? strstr(svg, "width=\"") : "", "width=\"%lfpt\"", w) != 1 ||
        sscanf(strstr(svg, "height=\"") ? strstr(svg, "height=\"") : "", "height=\"%lfpt\"", h) != 1) {
        free(buf);
        return NULL;
    }
    memmove(buf, svg, strlen(svg) + 1);
    return buf;
}

static void xml_text(FILE *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        default: fputc(s[i], out);
        }
    }
}

int weir_plan_svg(struct weir__plan *p, FILE *out)
{
    char *text = NULL;
    size_t tlen = 0;
    FILE *mf = open_memstream(&text, &tlen);
    if (!mf || weir__plan_print(p, mf) < 0 || fclose(mf) != 0) {
        fprintf(stderr, "weir-plan: svg: cannot format the schedules\n");
        free(text);
        return -1;
    }
    unsigned lines = 0, cols = 0;
    for (const char *s = text; *s;) {
        size_t n = strcspn(s, "\n");
        lines++;
        cols = n > cols ? (unsigned)n : cols;
        s += n + (s[n] == '\n');
    }
    double gw = 0, gh = 0;
    char *graph = NULL;
    if (!on_path("dot"))
        fprintf(stderr, "weir-plan: svg: Graphviz's 'dot' is not on PATH (Debian: apt-get install "
                        "graphviz); the SVG shows the schedules only\n");
    else if (!(graph = run_dot(p, &gw, &gh)))
        fprintf(stderr, "weir-plan: svg: 'dot -Tsvg' failed; the SVG shows the schedules only\n");
    double lh = 14, cw = 7.3, pad = 16;
    double tx = graph ? gw + 2 * pad : pad;
    double W = tx + cols * cw + pad, H = lines * lh + 2 * pad;
    if (graph && gh + 2 * pad > H)
        H = gh + 2 * pad;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                 "viewBox=\"0 0 %.0f %.0f\">\n<title>plan '",
            W, H, W, H);
    xml_text(out, p->graph, strlen(p->graph));
    fprintf(out, "'</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (graph) {
        /* dot's root element, placed as a nested viewport. */
        fprintf(out, "<g transform=\"translate(%.0f,%.0f)\">\n%s</g>\n", pad, pad, graph);
    }
    fprintf(out, "<text font-family=\"monospace\" font-size=\"12\" xml:space=\"preserve\">\n");
    unsigned i = 0;
    for (const char *s = text; *s; i++) {
        size_t n = strcspn(s, "\n");
        fprintf(out, "<tspan x=\"%.0f\" y=\"%.0f\">", tx, pad + (i + 1) * lh);
        xml_text(out, s, n);
        fputs("</tspan>\n", out);
        s += n + (s[n] == '\n');
    }
    fputs("</text>\n</svg>\n", out);
    free(graph);
    free(text);
    return 0;
}
