// A thread started by CreateThread whose thread_local object has a destructor. The
// Win32-threads libstdc++ registers it with a Win32 thread key of libmingw32's tlsthrd.o,
// whose destructors run when the image's TLS callbacks tell it of the thread's end (tlssup.o
// in a program; the loader calls `__mingw_TLScallback` as one of a module's TLS callbacks).
#include <windows.h>

static volatile LONG destroyed;

struct Counted {
    int touched = 0;
    // Reads no member: the emulated-TLS storage may be freed before this runs.
    ~Counted() { InterlockedIncrement(&destroyed); }
};
static thread_local Counted counted;

static DWORD WINAPI body(LPVOID) {
    counted.touched = 1;
    return 0;
}

// Runs one such thread to its end; returns how many of those objects were destroyed so far.
int thread_local_destructors_after_a_thread() {
    HANDLE thread = CreateThread(nullptr, 0, body, nullptr, 0, nullptr);
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
    return static_cast<int>(destroyed);
}
