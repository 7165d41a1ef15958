/*
 * Symbol export control. The library is built with hidden visibility; only
 * declarations marked MAILPROTO_EXTERN are exported from the shared library.
 * Users of the static library on Windows define MAILPROTO_STATIC (the CMake
 * package and mailproto.pc do this for them).
 */
#ifndef MAILPROTO_EXPORT_H
#define MAILPROTO_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(MAILPROTO_STATIC)
#define MAILPROTO_EXTERN
#elif defined(MAILPROTO_BUILDING)
#define MAILPROTO_EXTERN __declspec(dllexport)
#else
#define MAILPROTO_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define MAILPROTO_EXTERN __attribute__((visibility("default")))
#else
#define MAILPROTO_EXTERN
#endif

#endif /* MAILPROTO_EXPORT_H */
