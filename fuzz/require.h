// What a fuzz target checks beyond "no crash, no sanitizer report": a
// property of its output. When one does not hold, FUZZ_REQUIRE names it (file,
// line, the condition) and aborts, which libFuzzer reports as a crash and
// saves the input for.
#ifndef KURA_FUZZ_REQUIRE_H_
#define KURA_FUZZ_REQUIRE_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_REQUIRE(condition)                                                                    \
  do {                                                                                             \
    if (!(condition)) {                                                                            \
      std::fprintf(stderr, "%s:%d: property does not hold: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

#endif  // KURA_FUZZ_REQUIRE_H_
