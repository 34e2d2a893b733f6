#include <execinfo.h>

#include "shapes.h"

// Kept out of line so each level is a real frame the unwinder must walk through.
__attribute__((noinline)) int depth_backtrace(int depth) {
    if (depth > 0) {
        int n = depth_backtrace(depth - 1);
        asm volatile("" ::: "memory");
        return n;
    }
    void *frames[64];
    return backtrace(frames, 64);
}
