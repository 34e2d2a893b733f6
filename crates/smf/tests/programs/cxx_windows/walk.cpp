#include <unwind.h>

// Kept out of line so each level is a real frame the unwinder must walk through.
static _Unwind_Reason_Code count_frame(struct _Unwind_Context *, void *count) {
    ++*static_cast<int *>(count);
    return _URC_NO_REASON;
}

__attribute__((noinline)) int walk_stack(int depth) {
    if (depth > 0) {
        int n = walk_stack(depth - 1);
        asm volatile("" ::: "memory");
        return n;
    }
    int count = 0;
    _Unwind_Backtrace(count_frame, &count);
    return count;
}

// Calls a function of another object's table: an exception it throws passes this frame.
__attribute__((noinline)) long call_through(long (*const *table)(long, long), int index, long a, long b) {
    struct Guard {
        ~Guard() { asm volatile("" ::: "memory"); }
    } guard;
    return table[index](a, b);
}
