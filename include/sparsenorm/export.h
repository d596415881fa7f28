// Symbol visibility for the sparsenorm library.
//
// The library is compiled with hidden visibility; only declarations marked
// SPARSENORM_API are part of the binary interface of the shared library.
#ifndef SPARSENORM_EXPORT_H_
#define SPARSENORM_EXPORT_H_

#if defined(SPARSENORM_STATIC_DEFINE)
#define SPARSENORM_API
#elif defined(_WIN32)
#if defined(SPARSENORM_BUILDING)
#define SPARSENORM_API __declspec(dllexport)
#else
#define SPARSENORM_API __declspec(dllimport)
#endif
#else
#define SPARSENORM_API __attribute__((visibility("default")))
#endif

#endif  // SPARSENORM_EXPORT_H_
