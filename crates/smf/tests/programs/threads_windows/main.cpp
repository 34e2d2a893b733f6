// std::thread on mingw-w64's POSIX-threads toolchain (x86_64-w64-mingw32-g++-posix), whose
// libstdc++ runs on winpthreads: threads, a mutex and condition variable, std::async, and
// thread_local objects with destructors (libstdc++ registers them with a pthread key). A
// thread started by CreateThread rather than winpthreads has its thread_local destroyed by
// winpthreads' TLS callback when it ends (DLL_THREAD_DETACH), which a module gets only if
// the loader calls its TLS callbacks as Windows calls an image's. Threads print one at a
// time (each is joined before the next starts), so the output is deterministic.
#include <windows.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <numeric>
#include <queue>
#include <thread>
#include <vector>

// Counts destructions in a global: the destructor reads no member, since on a thread that
// winpthreads did not start libgcc's emulated TLS may free the object's storage first.
static std::atomic<int> destroyed{0};
struct PerThread {
    int id = -1;
    ~PerThread() {
        std::printf("a thread-local destroyed (%d so far)\n", ++destroyed);
        std::fflush(stdout);
    }
};
thread_local PerThread per_thread;
thread_local long counter = 100;

static long sum_to(long n) {
    long s = 0;
    for (long k = 1; k <= n; k++) s += k;
    return s;
}

static DWORD WINAPI native_thread(LPVOID arg) {
    per_thread.id = static_cast<int>(reinterpret_cast<intptr_t>(arg));
    counter += per_thread.id;
    std::printf("native thread %d counter %ld\n", per_thread.id, counter);
    std::fflush(stdout);
    return 0;
}

int main() {
    long checksum = 0;
    for (int i = 0; i < 3; i++) {
        std::thread worker([i, &checksum] {
            per_thread.id = i;
            counter += i;
            checksum += sum_to(1000 * (i + 1)) + counter;
            std::printf("std::thread %d counter %ld\n", i, counter);
            std::fflush(stdout);
        });
        worker.join();
    }

    // Threads not started by winpthreads: their thread_local is destroyed by its TLS callback.
    for (int i = 10; i < 12; i++) {
        HANDLE thread = CreateThread(nullptr, 0, native_thread, reinterpret_cast<LPVOID>(static_cast<intptr_t>(i)), 0, nullptr);
        WaitForSingleObject(thread, INFINITE);
        CloseHandle(thread);
    }

    // Producer and consumer through a condition variable, four threads at once.
    std::mutex lock;
    std::condition_variable ready;
    std::queue<int> queue;
    bool done = false;
    long consumed = 0;
    std::vector<std::thread> consumers;
    for (int c = 0; c < 3; c++) {
        consumers.emplace_back([&] {
            std::unique_lock<std::mutex> guard(lock);
            for (;;) {
                ready.wait(guard, [&] { return done || !queue.empty(); });
                if (queue.empty()) return;
                consumed += queue.front();
                queue.pop();
            }
        });
    }
    for (int v = 1; v <= 1000; v++) {
        std::lock_guard<std::mutex> guard(lock);
        queue.push(v);
        ready.notify_one();
    }
    {
        std::lock_guard<std::mutex> guard(lock);
        done = true;
    }
    ready.notify_all();
    for (auto &t : consumers) t.join();
    std::printf("consumed %ld\n", consumed);

    std::vector<std::future<long>> parts;
    for (long p = 1; p <= 4; p++) parts.push_back(std::async(std::launch::async, sum_to, p * 500));
    long total = 0;
    for (auto &part : parts) total += part.get();
    std::printf("async total %ld\n", total);

    checksum += consumed + total;
    std::printf("main thread counter %ld checksum %ld, %d thread-locals destroyed\n", counter, checksum,
                destroyed.load());
    return static_cast<int>(checksum & 0x7f);
}
