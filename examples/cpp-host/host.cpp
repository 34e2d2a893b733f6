// A C++ host of simple-loader through its C API (smf.h): loads a module, calls its
// functions through addresses that follow reloads, swaps in a rebuilt version while
// running, and turns the library's errors into exceptions.
//
// Build and run (from the repository root; `cargo test -p smf-capi` does the same with
// modules it compiles):
//
//   cargo build --release -p smf-capi
//   c++ -std=c++17 -I crates/smf-capi/include examples/cpp-host/host.cpp
//       -L target/release -lsmf -Wl,-rpath,$PWD/target/release -o cpp-host    (one line)
//   ./cpp-host lib.smf [new-lib.smf]
//
// lib.smf exports `long version(void)` and `long bump(void)` (smf pack --reloadable); if a
// second file is given, it is renamed over the first and reloaded.
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "smf.h"

namespace {

// The message of the last failed call on this thread.
[[noreturn]] void fail(const std::string &what) {
    const char *error = smf_error();
    throw std::runtime_error(what + ": " + (error ? error : "unknown error"));
}

struct RegistryDeleter {
    void operator()(smf_registry *r) const { smf_registry_free(r); }
};
struct ModuleDeleter {
    void operator()(smf_module *m) const { smf_module_release(m); }
};
struct ReportDeleter {
    void operator()(smf_report *r) const { smf_report_free(r); }
};

// A function of a loaded module with its C type; `smf_current` addresses follow reloads.
template <typename F> F *function(void *address) {
    F *f;
    std::memcpy(&f, &address, sizeof f);
    return f;
}

class Host {
  public:
    Host() : registry_(smf_registry_new()) {
        if (!registry_) fail("smf_registry_new");
    }

    std::unique_ptr<smf_module, ModuleDeleter> load(const std::string &path) {
        std::unique_ptr<smf_module, ModuleDeleter> module(smf_load(registry_.get(), path.c_str()));
        if (!module) fail("load");
        return module;
    }

    template <typename F> F *current(const std::string &path, const char *name) {
        void *address = smf_current(registry_.get(), path.c_str(), name);
        if (!address) fail(std::string("current ") + name);
        return function<F>(address);
    }

    std::string reload(const std::string &path) {
        std::unique_ptr<smf_report, ReportDeleter> report(
            smf_reload_with_report(registry_.get(), path.c_str()));
        if (!report) fail("reload");
        return smf_report_text(report.get());
    }

    // Keeps the versions this thread may run from being freed by a concurrent reload.
    class Pin {
      public:
        explicit Pin(smf_registry *registry) : pin_(smf_pin(registry)) {
            if (!pin_) fail("smf_pin");
        }
        ~Pin() { smf_unpin(pin_); }
        Pin(const Pin &) = delete;
        Pin &operator=(const Pin &) = delete;

      private:
        smf_pin_guard *pin_;
    };
    Pin pin() { return Pin(registry_.get()); }

  private:
    std::unique_ptr<smf_registry, RegistryDeleter> registry_;
};

} // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s LIB.smf [NEW-LIB.smf]\n", argv[0]);
        return 2;
    }
    const std::string lib = argv[1];
    try {
        Host host;
        auto module = host.load(lib);
        auto version = host.current<long()>(lib, "version");
        auto bump = host.current<long()>(lib, "bump");

        // Worker threads call into the module while the main thread may reload it.
        auto work = [&] {
            for (int i = 0; i < 3; i++) {
                auto pin = host.pin();
                bump();
            }
        };
        std::vector<std::thread> workers;
        workers.emplace_back(work);
        for (auto &w : workers) w.join();
        {
            auto pin = host.pin();
            std::printf("version %ld, counter %ld\n", version(), bump() - 1);
        }

        if (argc > 2) {
            if (std::rename(argv[2], lib.c_str()) != 0) {
                std::perror("rename");
                return 1;
            }
            std::printf("%s\n", host.reload(lib).c_str());
            workers.clear();
            workers.emplace_back(work);
            for (auto &w : workers) w.join();
            auto pin = host.pin();
            // The same function pointers reach the new version; the counter carried over.
            std::printf("version %ld, counter %ld\n", version(), bump() - 1);
        }

        try {
            host.current<long()>(lib, "no_such_function");
        } catch (const std::exception &error) {
            std::printf("as expected: %s\n", error.what());
        }
    } catch (const std::exception &error) {
        std::fprintf(stderr, "%s\n", error.what());
        return 1;
    }
    return 0;
}
