// What the fuzz targets share: an invariant that does not hold is a crash
// libFuzzer saves, with a line that says which invariant it was.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                   \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "invariant failed at %s:%d: %s (%s)\n", __FILE__, \
                         __LINE__, what, #cond);                                 \
            std::abort();                                                        \
        }                                                                        \
    } while (0)
