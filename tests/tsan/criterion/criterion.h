/* SPDX-License-Identifier: MIT */
/*
 * tests/tsan/criterion/criterion.h - a small stand-in for the part of
 * Criterion's API that weir's test suites use, so that the same test
 * sources build and run under ThreadSanitizer (Criterion 2.4's boxfort
 * arena cannot be set up under TSan: Snaipe/Criterion#274).
 *
 * Put `-I tests/tsan` before any other include directory and link the test
 * file with tests/tsan/runner.c, which holds main().
 *
 * What it supports (with Criterion's semantics):
 *  - Test(suite, name [, .init = f, .fini = g, .timeout = s, .signal = n,
 *    .exit_code = n, .disabled = b, .description = "..."]) and
 *    TestSuite(suite [, the same options]);
 *  - cr_assert / cr_expect and their _not, _eq, _neq, _lt, _leq, _gt, _geq,
 *    _null, _not_null, _float_eq, _float_neq, _str_empty, _str_not_empty,
 *    _str_eq, _str_neq, _str_lt, _str_leq, _str_gt, _str_geq, _wcs_*,
 *    _arr_eq, _arr_neq, _arr_*_cmp variants, cr_assert_fail,
 *    cr_expect_fail, cr_skip_test / cr_skip, cr_log, cr_log_info,
 *    cr_log_warn, cr_log_error (always printed). Every assertion takes an optional
 *    printf-style message (a string literal) after its operands.
 *
 * Operands are evaluated once (the message arguments only on failure).
 * A failed cr_assert* ends the test (its .fini fixtures still run); a
 * failed cr_expect* marks it failed and goes on. See runner.c for what
 * happens when an assertion fails in another thread or in a forked child.
 */
#ifndef WEIR_TSAN_CRITERION_SHIM_H
#define WEIR_TSAN_CRITERION_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- test and suite descriptions ------------------------------------------ */

/* The options of Test() and TestSuite() (same field names as Criterion's). */
struct criterion_test_extra_data {
    int sentinel_;
    void (*init)(void);
    void (*fini)(void);
    int signal;        /* the test passes only if it is killed by this signal */
    int exit_code;     /* the test passes only if it exits with this status */
    bool disabled;     /* skip the test */
    const char *description;
    double timeout;    /* seconds; 0: the suite's, else the --timeout option, else none */
    void *data;
};

struct cri_test_ {
    const char *suite;
    const char *name;
    void (*fn)(void);
    struct criterion_test_extra_data *data;
    const char *file;
    unsigned line;
    struct cri_test_ *next_;
};

struct cri_suite_ {
    const char *name;
    struct criterion_test_extra_data *data;
    struct cri_suite_ *next_;
};

void cri_register_test_(struct cri_test_ *t);
void cri_register_suite_(struct cri_suite_ *s);

#define CRI_CAT_(a, b) CRI_CAT__(a, b)
#define CRI_CAT__(a, b) a##b
#define CRI_STR_(x) CRI_STR__(x)
#define CRI_STR__(x) #x

#define Test(...) CRI_TEST_BASE_(__VA_ARGS__, .sentinel_ = 0)
#define CRI_TEST_BASE_(Suite, Name, ...)                                                          \
    static void cri_fn_##Suite##_##Name##_(void);                                                  \
    static struct criterion_test_extra_data cri_extra_##Suite##_##Name##_ = {__VA_ARGS__};         \
    static struct cri_test_ cri_test_##Suite##_##Name##_ = {                                      \
        #Suite, #Name, cri_fn_##Suite##_##Name##_, &cri_extra_##Suite##_##Name##_,                \
        __FILE__,  __LINE__, NULL};                                                                \
    __attribute__((constructor)) static void cri_reg_##Suite##_##Name##_(void)                   \
    {                                                                                              \
        cri_register_test_(&cri_test_##Suite##_##Name##_);                                         \
    }                                                                                              \
    static void cri_fn_##Suite##_##Name##_(void)

/* Ends with a declaration so that the `;` the user writes after it is needed. */
#define TestSuite(...) CRI_SUITE_BASE_(__VA_ARGS__, .sentinel_ = 0)
#define CRI_SUITE_BASE_(Name, ...)                                                                 \
    static struct criterion_test_extra_data cri_sextra_##Name##_ = {__VA_ARGS__};                  \
    static struct cri_suite_ cri_suite_##Name##_;                                                  \
    __attribute__((constructor)) static void cri_sreg_##Name##_(void)                             \
    {                                                                                              \
        cri_register_suite_(&cri_suite_##Name##_);                                                 \
    }                                                                                              \
    static struct cri_suite_ cri_suite_##Name##_ = {#Name, &cri_sextra_##Name##_, NULL}

/* ---- reporting (runner.c) ------------------------------------------------- */

enum cri_msg_kind_ {
    CRI_MSG_FAIL_,          /* cr_assert_fail */
    CRI_MSG_EXPR_FALSE_,    /* "The expression X is false." */
    CRI_MSG_STR_FALSE_,     /* the same, with both strings */
    CRI_MSG_IS_NULL_,       /* "X is null." */
    CRI_MSG_IS_NOT_NULL_,   /* "X is not null." */
    CRI_MSG_IS_EMPTY_,      /* "X is empty." */
    CRI_MSG_IS_NOT_EMPTY_,  /* "X is not empty." */
};

/*
 * Records and prints a failed assertion. fmt is the user's message with one
 * extra leading character (the macros prepend "x" so that an absent message
 * is not an empty format string); s1/s2 are the strings compared, or NULL.
 */
void cri_fail_(const char *file, unsigned line, int kind, const char *expr, const char *s1,
               const char *s2, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
/* Ends the current test (after a failed cr_assert*): runs its .fini fixtures. */
void cri_abort_(void) __attribute__((noreturn));
/* cr_skip_test: marks the test skipped and ends it like cri_abort_. */
void cri_skip_(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

enum criterion_logging_level {
    CR_LOG_INFO = 1,
    CR_LOG_WARNING,
    CR_LOG_ERROR,
};
void cri_log_(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- argument lists: head and tail of 1..64 macro arguments ---------------- */

#define CRI_HEAD_(...) CRI_HEAD__(__VA_ARGS__, ~)
#define CRI_HEAD__(a, ...) a
#define CRI_TAIL_(...) CRI_CAT_(CRI_TAIL_, CRI_ONE_OR_MORE_(__VA_ARGS__))(__VA_ARGS__)
#define CRI_TAIL_1(a)
#define CRI_TAIL_M(a, ...) __VA_ARGS__
#define CRI_ONE_OR_MORE_(...)                                                                      \
    CRI_ARG65_(__VA_ARGS__, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, \
               M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M, M,  \
               M, M, M, M, M, M, M, M, M, M, M, M, M, 1, ~)
#define CRI_ARG65_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17,    \
                   _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32,     \
                   _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47,     \
                   _48, _49, _50, _51, _52, _53, _54, _55, _56, _57, _58, _59, _60, _61, _62,     \
                   _63, _64, X, ...)                                                              \
    X

#define CRI_A1_(...) CRI_HEAD_(__VA_ARGS__)
#define CRI_A2_(...) CRI_HEAD_(CRI_TAIL_(__VA_ARGS__))
#define CRI_A3_(...) CRI_HEAD_(CRI_TAIL_(CRI_TAIL_(__VA_ARGS__)))
#define CRI_A4_(...) CRI_HEAD_(CRI_TAIL_(CRI_TAIL_(CRI_TAIL_(__VA_ARGS__))))
#define CRI_REST1_(...) CRI_TAIL_(__VA_ARGS__)
#define CRI_REST2_(...) CRI_TAIL_(CRI_TAIL_(__VA_ARGS__))
#define CRI_REST3_(...) CRI_TAIL_(CRI_TAIL_(CRI_TAIL_(__VA_ARGS__)))
#define CRI_REST4_(...) CRI_TAIL_(CRI_TAIL_(CRI_TAIL_(CRI_TAIL_(__VA_ARGS__))))

/* ---- the core ------------------------------------------------------------- */

#define CRI_ABORT_() cri_abort_()
#define CRI_CONTINUE_() ((void)0)

/* The trailing argument list is the optional message: empty or "fmt", args... */
#define CRI_IMPL_(Fail, Cond, Kind, Expr, S1, S2, ...)                                            \
    do {                                                                                           \
        if (!(Cond)) {                                                                             \
            cri_fail_(__FILE__, __LINE__, Kind, Expr, S1, S2, "x" __VA_ARGS__);                    \
            Fail();                                                                                \
        }                                                                                          \
    } while (0)

#define CRI_COND_(Fail, Cond, ...)                                                                 \
    CRI_IMPL_(Fail, Cond, CRI_MSG_EXPR_FALSE_, CRI_STR_(Cond), NULL, NULL, __VA_ARGS__)
#define CRI_COND_VA_(Fail, ...) CRI_COND_(Fail, CRI_A1_(__VA_ARGS__), CRI_REST1_(__VA_ARGS__))

#define CRI_NOT_(Fail, Cond, ...)                                                                  \
    CRI_IMPL_(Fail, !(Cond), CRI_MSG_EXPR_FALSE_, CRI_STR_(!(Cond)), NULL, NULL, __VA_ARGS__)
#define CRI_NOT_VA_(Fail, ...) CRI_NOT_(Fail, CRI_A1_(__VA_ARGS__), CRI_REST1_(__VA_ARGS__))

#define CRI_FAIL_VA_(Fail, ...)                                                                    \
    CRI_IMPL_(Fail, 0, CRI_MSG_FAIL_, "", NULL, NULL, __VA_ARGS__)

#define CRI_OP_(Fail, Op, A, B, ...)                                                               \
    CRI_IMPL_(Fail, (A) Op (B), CRI_MSG_EXPR_FALSE_, CRI_STR_((A) Op (B)), NULL, NULL,             \
              __VA_ARGS__)
#define CRI_OP_VA_(Fail, Op, ...)                                                                  \
    CRI_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_REST2_(__VA_ARGS__))

#define CRI_NULL_OP_(Fail, Op, Kind, V, ...)                                                       \
    CRI_IMPL_(Fail, (V)Op NULL, Kind, CRI_STR_(V), NULL, NULL, __VA_ARGS__)
#define CRI_NULL_OP_VA_(Fail, Op, Kind, ...)                                                       \
    CRI_NULL_OP_(Fail, Op, Kind, CRI_A1_(__VA_ARGS__), CRI_REST1_(__VA_ARGS__))

#define CRI_FLOAT_EQ_(A, B, E) ((B) - (A) <= (E) && (A) - (B) <= (E))
#define CRI_FLOAT_NEQ_(A, B, E) ((B) - (A) > (E) || (A) - (B) > (E))
#define CRI_FLOAT_OP_(Fail, Op, A, B, E, ...)                                                      \
    CRI_IMPL_(Fail, Op(A, B, E), CRI_MSG_EXPR_FALSE_, CRI_STR_(Op(A, B, E)), NULL, NULL,        \
              __VA_ARGS__)
#define CRI_FLOAT_OP_VA_(Fail, Op, ...)                                                            \
    CRI_FLOAT_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_A3_(__VA_ARGS__),     \
                  CRI_REST3_(__VA_ARGS__))

#define CRI_STR_EMPTY_OP_(Fail, Op, Kind, V, ...)                                                  \
    do {                                                                                           \
        const char *cri_sv_ = (V);                                                                 \
        CRI_IMPL_(Fail, cri_sv_ != NULL && cri_sv_[0] Op '\0',                                     \
                  cri_sv_ != NULL ? Kind : CRI_MSG_IS_NULL_, CRI_STR_(V), cri_sv_, NULL,          \
                  __VA_ARGS__);                                                                    \
    } while (0)
#define CRI_STR_EMPTY_OP_VA_(Fail, Op, Kind, ...)                                                  \
    CRI_STR_EMPTY_OP_(Fail, Op, Kind, CRI_A1_(__VA_ARGS__), CRI_REST1_(__VA_ARGS__))

#define CRI_STR_OP_(Fail, Op, A, B, ...)                                                           \
    do {                                                                                           \
        const char *cri_sa_ = (A);                                                                 \
        const char *cri_sb_ = (B);                                                                 \
        CRI_IMPL_(Fail, cri_sa_ != NULL && cri_sb_ != NULL && strcmp(cri_sa_, cri_sb_) Op 0,       \
                  CRI_MSG_STR_FALSE_, CRI_STR_((A) Op (B)), cri_sa_, cri_sb_, __VA_ARGS__);      \
    } while (0)
#define CRI_STR_OP_VA_(Fail, Op, ...)                                                              \
    CRI_STR_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_REST2_(__VA_ARGS__))

#define CRI_WCS_EMPTY_OP_(Fail, Op, Kind, V, ...)                                                  \
    do {                                                                                           \
        const wchar_t *cri_wv_ = (V);                                                              \
        CRI_IMPL_(Fail, cri_wv_ != NULL && cri_wv_[0] Op L'\0',                                    \
                  cri_wv_ != NULL ? Kind : CRI_MSG_IS_NULL_, CRI_STR_(V), NULL, NULL,             \
                  __VA_ARGS__);                                                                    \
    } while (0)
#define CRI_WCS_EMPTY_OP_VA_(Fail, Op, Kind, ...)                                                  \
    CRI_WCS_EMPTY_OP_(Fail, Op, Kind, CRI_A1_(__VA_ARGS__), CRI_REST1_(__VA_ARGS__))

#define CRI_WCS_OP_(Fail, Op, A, B, ...)                                                           \
    do {                                                                                           \
        const wchar_t *cri_wa_ = (A);                                                              \
        const wchar_t *cri_wb_ = (B);                                                              \
        CRI_IMPL_(Fail, cri_wa_ != NULL && cri_wb_ != NULL && wcscmp(cri_wa_, cri_wb_) Op 0,       \
                  CRI_MSG_EXPR_FALSE_, CRI_STR_((A) Op (B)), NULL, NULL, __VA_ARGS__);         \
    } while (0)
#define CRI_WCS_OP_VA_(Fail, Op, ...)                                                              \
    CRI_WCS_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_REST2_(__VA_ARGS__))

#define CRI_MEM_OP_(Fail, Op, A, B, Size, ...)                                                     \
    CRI_IMPL_(Fail, memcmp((A), (B), (Size)) Op 0, CRI_MSG_EXPR_FALSE_,                            \
              CRI_STR_((A)[0..Size] Op (B)[0..Size]), NULL, NULL, __VA_ARGS__)
#define CRI_MEM_OP_VA_(Fail, Op, ...)                                                              \
    CRI_MEM_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_A3_(__VA_ARGS__),       \
                CRI_REST3_(__VA_ARGS__))

/* Cmp(const T *, const T *) returns <0, 0 or >0, like Criterion's. */
#define CRI_ARR_CMP_OP_(Fail, Op, A, B, Size, Cmp, ...)                                            \
    do {                                                                                           \
        __typeof__(&(A)[0]) cri_first_ = (A);                                                      \
        __typeof__(&(B)[0]) cri_second_ = (B);                                                     \
        int cri_order_ = 0;                                                                        \
        size_t cri_i_, cri_n_ = (Size);                                                            \
        for (cri_i_ = 0; !cri_order_ && cri_i_ < cri_n_; ++cri_i_)                                 \
            cri_order_ = Cmp(cri_first_ + cri_i_, cri_second_ + cri_i_);                           \
        CRI_IMPL_(Fail, cri_order_ Op 0, CRI_MSG_EXPR_FALSE_,                                      \
                  CRI_STR_((A)[0..Size] Op (B)[0..Size]), NULL, NULL, __VA_ARGS__);              \
    } while (0)
#define CRI_ARR_CMP_OP_VA_(Fail, Op, ...)                                                          \
    CRI_ARR_CMP_OP_(Fail, Op, CRI_A1_(__VA_ARGS__), CRI_A2_(__VA_ARGS__), CRI_A3_(__VA_ARGS__),   \
                    CRI_A4_(__VA_ARGS__), CRI_REST4_(__VA_ARGS__))

/* ---- the public macros ---------------------------------------------------- */

#define cr_assert(...) CRI_COND_VA_(CRI_ABORT_, __VA_ARGS__)
#define cr_expect(...) CRI_COND_VA_(CRI_CONTINUE_, __VA_ARGS__)
#define cr_assert_not(...) CRI_NOT_VA_(CRI_ABORT_, __VA_ARGS__)
#define cr_expect_not(...) CRI_NOT_VA_(CRI_CONTINUE_, __VA_ARGS__)

/* cr_assert_fail() and cr_assert_fail("fmt", ...) */
#define cr_assert_fail(...) CRI_FAIL_VA_(CRI_ABORT_, __VA_ARGS__)
#define cr_expect_fail(...) CRI_FAIL_VA_(CRI_CONTINUE_, __VA_ARGS__)
#define cr_skip_test(...) cri_skip_("x" __VA_ARGS__)
#define cr_skip(...) cri_skip_("x" __VA_ARGS__)

#define cr_assert_eq(...) CRI_OP_VA_(CRI_ABORT_, ==, __VA_ARGS__)
#define cr_expect_eq(...) CRI_OP_VA_(CRI_CONTINUE_, ==, __VA_ARGS__)
#define cr_assert_neq(...) CRI_OP_VA_(CRI_ABORT_, !=, __VA_ARGS__)
#define cr_expect_neq(...) CRI_OP_VA_(CRI_CONTINUE_, !=, __VA_ARGS__)
#define cr_assert_lt(...) CRI_OP_VA_(CRI_ABORT_, <, __VA_ARGS__)
#define cr_expect_lt(...) CRI_OP_VA_(CRI_CONTINUE_, <, __VA_ARGS__)
#define cr_assert_leq(...) CRI_OP_VA_(CRI_ABORT_, <=, __VA_ARGS__)
#define cr_expect_leq(...) CRI_OP_VA_(CRI_CONTINUE_, <=, __VA_ARGS__)
#define cr_assert_gt(...) CRI_OP_VA_(CRI_ABORT_, >, __VA_ARGS__)
#define cr_expect_gt(...) CRI_OP_VA_(CRI_CONTINUE_, >, __VA_ARGS__)
#define cr_assert_geq(...) CRI_OP_VA_(CRI_ABORT_, >=, __VA_ARGS__)
#define cr_expect_geq(...) CRI_OP_VA_(CRI_CONTINUE_, >=, __VA_ARGS__)

#define cr_assert_null(...) CRI_NULL_OP_VA_(CRI_ABORT_, ==, CRI_MSG_IS_NOT_NULL_, __VA_ARGS__)
#define cr_expect_null(...) CRI_NULL_OP_VA_(CRI_CONTINUE_, ==, CRI_MSG_IS_NOT_NULL_, __VA_ARGS__)
#define cr_assert_not_null(...) CRI_NULL_OP_VA_(CRI_ABORT_, !=, CRI_MSG_IS_NULL_, __VA_ARGS__)
#define cr_expect_not_null(...) CRI_NULL_OP_VA_(CRI_CONTINUE_, !=, CRI_MSG_IS_NULL_, __VA_ARGS__)

#define cr_assert_float_eq(...) CRI_FLOAT_OP_VA_(CRI_ABORT_, CRI_FLOAT_EQ_, __VA_ARGS__)
#define cr_expect_float_eq(...) CRI_FLOAT_OP_VA_(CRI_CONTINUE_, CRI_FLOAT_EQ_, __VA_ARGS__)
#define cr_assert_float_neq(...) CRI_FLOAT_OP_VA_(CRI_ABORT_, CRI_FLOAT_NEQ_, __VA_ARGS__)
#define cr_expect_float_neq(...) CRI_FLOAT_OP_VA_(CRI_CONTINUE_, CRI_FLOAT_NEQ_, __VA_ARGS__)

#define cr_assert_str_empty(...)                                                                   \
    CRI_STR_EMPTY_OP_VA_(CRI_ABORT_, ==, CRI_MSG_IS_NOT_EMPTY_, __VA_ARGS__)
#define cr_expect_str_empty(...)                                                                   \
    CRI_STR_EMPTY_OP_VA_(CRI_CONTINUE_, ==, CRI_MSG_IS_NOT_EMPTY_, __VA_ARGS__)
#define cr_assert_str_not_empty(...)                                                               \
    CRI_STR_EMPTY_OP_VA_(CRI_ABORT_, !=, CRI_MSG_IS_EMPTY_, __VA_ARGS__)
#define cr_expect_str_not_empty(...)                                                               \
    CRI_STR_EMPTY_OP_VA_(CRI_CONTINUE_, !=, CRI_MSG_IS_EMPTY_, __VA_ARGS__)
#define cr_assert_str_eq(...) CRI_STR_OP_VA_(CRI_ABORT_, ==, __VA_ARGS__)
#define cr_expect_str_eq(...) CRI_STR_OP_VA_(CRI_CONTINUE_, ==, __VA_ARGS__)
#define cr_assert_str_neq(...) CRI_STR_OP_VA_(CRI_ABORT_, !=, __VA_ARGS__)
#define cr_expect_str_neq(...) CRI_STR_OP_VA_(CRI_CONTINUE_, !=, __VA_ARGS__)
#define cr_assert_str_lt(...) CRI_STR_OP_VA_(CRI_ABORT_, <, __VA_ARGS__)
#define cr_expect_str_lt(...) CRI_STR_OP_VA_(CRI_CONTINUE_, <, __VA_ARGS__)
#define cr_assert_str_leq(...) CRI_STR_OP_VA_(CRI_ABORT_, <=, __VA_ARGS__)
#define cr_expect_str_leq(...) CRI_STR_OP_VA_(CRI_CONTINUE_, <=, __VA_ARGS__)
#define cr_assert_str_gt(...) CRI_STR_OP_VA_(CRI_ABORT_, >, __VA_ARGS__)
#define cr_expect_str_gt(...) CRI_STR_OP_VA_(CRI_CONTINUE_, >, __VA_ARGS__)
#define cr_assert_str_geq(...) CRI_STR_OP_VA_(CRI_ABORT_, >=, __VA_ARGS__)
#define cr_expect_str_geq(...) CRI_STR_OP_VA_(CRI_CONTINUE_, >=, __VA_ARGS__)

#define cr_assert_wcs_empty(...)                                                                   \
    CRI_WCS_EMPTY_OP_VA_(CRI_ABORT_, ==, CRI_MSG_IS_NOT_EMPTY_, __VA_ARGS__)
#define cr_expect_wcs_empty(...)                                                                   \
    CRI_WCS_EMPTY_OP_VA_(CRI_CONTINUE_, ==, CRI_MSG_IS_NOT_EMPTY_, __VA_ARGS__)
#define cr_assert_wcs_not_empty(...)                                                               \
    CRI_WCS_EMPTY_OP_VA_(CRI_ABORT_, !=, CRI_MSG_IS_EMPTY_, __VA_ARGS__)
#define cr_expect_wcs_not_empty(...)                                                               \
    CRI_WCS_EMPTY_OP_VA_(CRI_CONTINUE_, !=, CRI_MSG_IS_EMPTY_, __VA_ARGS__)
#define cr_assert_wcs_eq(...) CRI_WCS_OP_VA_(CRI_ABORT_, ==, __VA_ARGS__)
#define cr_expect_wcs_eq(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, ==, __VA_ARGS__)
#define cr_assert_wcs_neq(...) CRI_WCS_OP_VA_(CRI_ABORT_, !=, __VA_ARGS__)
#define cr_expect_wcs_neq(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, !=, __VA_ARGS__)
#define cr_assert_wcs_lt(...) CRI_WCS_OP_VA_(CRI_ABORT_, <, __VA_ARGS__)
#define cr_expect_wcs_lt(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, <, __VA_ARGS__)
#define cr_assert_wcs_leq(...) CRI_WCS_OP_VA_(CRI_ABORT_, <=, __VA_ARGS__)
#define cr_expect_wcs_leq(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, <=, __VA_ARGS__)
#define cr_assert_wcs_gt(...) CRI_WCS_OP_VA_(CRI_ABORT_, >, __VA_ARGS__)
#define cr_expect_wcs_gt(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, >, __VA_ARGS__)
#define cr_assert_wcs_geq(...) CRI_WCS_OP_VA_(CRI_ABORT_, >=, __VA_ARGS__)
#define cr_expect_wcs_geq(...) CRI_WCS_OP_VA_(CRI_CONTINUE_, >=, __VA_ARGS__)

#define cr_assert_arr_eq(...) CRI_MEM_OP_VA_(CRI_ABORT_, ==, __VA_ARGS__)
#define cr_expect_arr_eq(...) CRI_MEM_OP_VA_(CRI_CONTINUE_, ==, __VA_ARGS__)
#define cr_assert_arr_neq(...) CRI_MEM_OP_VA_(CRI_ABORT_, !=, __VA_ARGS__)
#define cr_expect_arr_neq(...) CRI_MEM_OP_VA_(CRI_CONTINUE_, !=, __VA_ARGS__)

#define cr_assert_arr_eq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, ==, __VA_ARGS__)
#define cr_expect_arr_eq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, ==, __VA_ARGS__)
#define cr_assert_arr_neq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, !=, __VA_ARGS__)
#define cr_expect_arr_neq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, !=, __VA_ARGS__)
#define cr_assert_arr_lt_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, <, __VA_ARGS__)
#define cr_expect_arr_lt_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, <, __VA_ARGS__)
#define cr_assert_arr_leq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, <=, __VA_ARGS__)
#define cr_expect_arr_leq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, <=, __VA_ARGS__)
#define cr_assert_arr_gt_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, >, __VA_ARGS__)
#define cr_expect_arr_gt_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, >, __VA_ARGS__)
#define cr_assert_arr_geq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_ABORT_, >=, __VA_ARGS__)
#define cr_expect_arr_geq_cmp(...) CRI_ARR_CMP_OP_VA_(CRI_CONTINUE_, >=, __VA_ARGS__)

/* Criterion's deprecated spellings. */
#define cr_assert_strings_eq(...) cr_assert_str_eq(__VA_ARGS__)
#define cr_assert_strings_neq(...) cr_assert_str_neq(__VA_ARGS__)
#define cr_assert_arrays_eq(...) cr_assert_arr_eq(__VA_ARGS__)
#define cr_assert_arrays_neq(...) cr_assert_arr_neq(__VA_ARGS__)
#define cr_abort_test(Message) cr_assert_fail("%s", Message)

/* Logging: one line on stderr, "[----] message" (also from threads). */
#define cr_log(Level, ...) cri_log_((int)(Level), __VA_ARGS__)
#define cr_log_info(...) cri_log_(CR_LOG_INFO, __VA_ARGS__)
#define cr_log_warn(...) cri_log_(CR_LOG_WARNING, __VA_ARGS__)
#define cr_log_error(...) cri_log_(CR_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* WEIR_TSAN_CRITERION_SHIM_H */
