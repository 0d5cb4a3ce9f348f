/* SPDX-License-Identifier: MIT */
/*
 * tests/sanitized.h - SANITIZED is 1 in a build under AddressSanitizer or
 * ThreadSanitizer (gcc's __SANITIZE_*__, clang's __has_feature), else 0:
 * tests that stream many messages reduce their counts with it.
 */
#ifndef WEIR_TESTS_SANITIZED_H
#define WEIR_TESTS_SANITIZED_H

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#undef SANITIZED
#define SANITIZED 1
#endif
#endif

#endif
