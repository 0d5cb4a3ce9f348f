/* SPDX-License-Identifier: MIT */
/*
 * perf/svg.c - `weir-bench ... --svg DIR`: plain SVG plots of one run's rows,
 * written by the program (no gnuplot): DIR/<cmd>-throughput.svg (msgs/s vs
 * message size, log-log, one line per implementation and case, weir and
 * every baseline of the same run together) and DIR/<cmd>-latency.svg (p50
 * and p99 per latency row, log scale).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "perf/bench.h"

static void esc(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        default: fputc(*s, f);
        }
}

static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

static int same_series(const struct bench_row *a, const struct bench_row *b)
{
    return !strcmp(a->impl, b->impl) && !strcmp(a->name, b->name) && a->readers == b->readers;
}

static int ok_tput(const struct bench_row *r)
{
    return !r->failed && !r->skipped && r->msgs_per_s > 0 && r->msg_bytes > 0;
}

static int throughput(FILE *f, const char *cmd, const struct bench_row *rows, size_t n)
{
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (ok_tput(&rows[i])) {
            double x = log2((double)rows[i].msg_bytes), y = log10(rows[i].msgs_per_s);
            xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
        }
    if (!isfinite(xmin))
        return 0;
    ymin = floor(ymin), ymax = ceil(ymax);
    if (ymax <= ymin)
        ymax = ymin + 1;
    if (xmax <= xmin)
        xmax = xmin + 1, xmin -= 1;
    const double L = 70, T = 40, W = 640, H = 400, legend = 300;
#define PX(x) (L + ((x) - xmin) / (xmax - xmin) * W)
#define PY(y) (T + H - ((y) - ymin) / (ymax - ymin) * H)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
               "height=\"100%%\" fill=\"white\"/>\n",
            L + W + 20 + legend, T + H + 50);
    fprintf(f, "<text x=\"%.0f\" y=\"20\" font-size=\"14\">weir-bench %s: throughput vs message "
               "size (one run)</text>\n", L, cmd);
    for (double y = ymin; y <= ymax + 1e-9; y += 1)
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">1e%.0f</text>\n",
                L, L + W, PY(y), PY(y), L - 4, PY(y) + 4, y);
    for (double x = ceil(xmin); x <= xmax + 1e-9; x += 1) {
        double b = pow(2, x);
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#eee\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f%s</text>\n",
                PX(x), PX(x), T, T + H, PX(x), T + H + 14,
                b >= 1048576 ? b / 1048576 : b >= 1024 ? b / 1024 : b,
                b >= 1048576 ? "M" : b >= 1024 ? "K" : "");
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">message bytes</text>\n"
               "<text x=\"14\" y=\"%.0f\" transform=\"rotate(-90 14 %.0f)\" "
               "text-anchor=\"middle\">messages/s</text>\n",
            L + W / 2, T + H + 32, T + H / 2, T + H / 2);
    unsigned s = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ok_tput(&rows[i]))
            continue;
        size_t j;
        for (j = 0; j < i; j++)
            if (ok_tput(&rows[j]) && same_series(&rows[i], &rows[j]))
                break;
        if (j < i)
            continue; /* drawn with its first row */
        const char *c = colors[s % (sizeof colors / sizeof *colors)];
        int weir = !strcmp(rows[i].impl, "weir");
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%d\"%s points=\"", c,
                weir ? 3 : 1, weir ? "" : " stroke-dasharray=\"4 2\"");
        for (size_t k = i; k < n; k++)
            if (ok_tput(&rows[k]) && same_series(&rows[i], &rows[k]))
                fprintf(f, "%.1f,%.1f ", PX(log2((double)rows[k].msg_bytes)),
                        PY(log10(rows[k].msgs_per_s)));
        fprintf(f, "\"/>\n");
        for (size_t k = i; k < n; k++)
            if (ok_tput(&rows[k]) && same_series(&rows[i], &rows[k]))
                fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                        PX(log2((double)rows[k].msg_bytes)), PY(log10(rows[k].msgs_per_s)), c);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">", L + W + 20, T + 12.0 * s, c);
        esc(f, rows[i].impl);
        fputc(' ', f);
        esc(f, rows[i].name);
        fprintf(f, " r%d</text>\n", rows[i].readers);
        s++;
    }
    fputs("</svg>\n", f);
#undef PX
#undef PY
    return 1;
}

static int ok_lat(const struct bench_row *r)
{
    return !r->failed && !r->skipped && r->p50_ns > 0;
}

static int latency(FILE *f, const char *cmd, const struct bench_row *rows, size_t n)
{
    unsigned m = 0;
    double vmax = 0, vmin = INFINITY;
    for (size_t i = 0; i < n; i++)
        if (ok_lat(&rows[i])) {
            m++;
            vmin = fmin(vmin, rows[i].p50_ns);
            vmax = fmax(vmax, fmax(rows[i].p50_ns, rows[i].p99_ns));
        }
    if (!m)
        return 0;
    double lo = floor(log10(vmin)), hi = ceil(log10(vmax));
    if (hi <= lo)
        hi = lo + 1;
    const double L = 280, T = 40, W = 520, bar = 16;
    double H = m * bar;
#define PX(v) (L + (log10(v) - lo) / (hi - lo) * W)
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%%\" "
               "height=\"100%%\" fill=\"white\"/>\n",
            L + W + 40, T + H + 50);
    fprintf(f, "<text x=\"10\" y=\"20\" font-size=\"14\">weir-bench %s: latency p50 (bar) and p99 "
               "(tick), ns, log scale (one run)</text>\n", cmd);
    for (double e = lo; e <= hi + 1e-9; e += 1)
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">1e%.0f</text>\n",
                PX(pow(10, e)), PX(pow(10, e)), T, T + H, PX(pow(10, e)), T + H + 14, e);
    unsigned k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bench_row *r = &rows[i];
        if (!ok_lat(r))
            continue;
        double y = T + k * bar;
        int weir = !strcmp(r->impl, "weir");
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + bar - 4);
        esc(f, r->impl);
        fputc(' ', f);
        esc(f, r->name);
        fprintf(f, " %zu B r%d</text>\n", r->msg_bytes, r->readers);
        fprintf(f, "<rect x=\"%.0f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\"/>\n", L,
                y + 2, fmax(1, PX(r->p50_ns) - L), bar - 4, weir ? "#1f77b4" : "#aaa");
        if (r->p99_ns > 0)
            fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                       "stroke-width=\"2\"/>\n",
                    PX(r->p99_ns), PX(r->p99_ns), y + 1, y + bar - 1);
        k++;
    }
    fputs("</svg>\n", f);
#undef PX
    return 1;
}

int bench_svg_write(const char *dir, const char *cmd, const struct bench_row *rows, size_t n)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "weir-bench: --svg %s: %s\n", dir, strerror(errno));
        return -1;
    }
    static const char *const kinds[] = {"throughput", "latency"};
    int (*const fns[])(FILE *, const char *, const struct bench_row *, size_t) = {throughput,
                                                                                  latency};
    for (int k = 0; k < 2; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%s.svg", dir, cmd, kinds[k]);
        FILE *f = fopen(path, "w");
        if (!f) {
            fprintf(stderr, "weir-bench: --svg: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
        fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
        int drew = fns[k](f, cmd, rows, n);
        if (!drew)
            fputs("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text "
                  "x=\"10\" y=\"24\">no rows of this kind in this run</text></svg>\n",
                  f);
        if (fclose(f) != 0) {
            fprintf(stderr, "weir-bench: --svg: writing %s failed\n", path);
            return -1;
        }
        if (!bench_opts.json)
            fprintf(stderr, "weir-bench: wrote %s\n", path);
    }
    return 0;
}
