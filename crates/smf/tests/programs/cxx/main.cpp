// A C++ program across four objects: the standard library (containers, strings, streams,
// algorithms, smart pointers, std::function), exceptions thrown and caught across objects
// and from inside libstdc++, virtual dispatch, typeinfo and dynamic_cast, global objects
// with constructors and destructors, function-local statics (__cxa_atexit), backtraces.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>
#include <typeinfo>

#include "shapes.h"

struct Announcer {
    std::string name;
    explicit Announcer(std::string n) : name(std::move(n)) { std::printf("construct %s\n", name.c_str()); }
    ~Announcer() { std::printf("destroy %s\n", name.c_str()); }
};

Announcer first_global("first");
static std::map<std::string, int> registry = {{"zero", 0}, {"one", 1}};
Announcer second_global("second");

static Announcer &lazy() {
    static Announcer instance("lazy");  // registered with __cxa_atexit on first use
    return instance;
}

static int checksum = 0;

// A thread-local object with a constructor and a destructor, per thread.
thread_local Announcer per_thread("per-thread");
thread_local std::vector<int> per_thread_values = {1, 2, 3};

static void report(const Shape &shape) {
    std::ostringstream line;
    line << std::fixed << std::setprecision(3) << "#" << shape.id << " " << shape.name()
         << " area=" << shape.area() << " type=" << typeid(shape).name();
    if (auto rect = dynamic_cast<const Rect *>(&shape)) line << " rect(" << rect->w << "x" << rect->h << ")";
    std::cout << line.str() << "\n";
    checksum += static_cast<int>(shape.area()) + shape.id;
}

int main(int argc, char **argv) {
    std::cout << "args:";
    for (int i = 1; i < argc; i++) std::cout << " " << argv[i];
    std::cout << "\n";

    auto shapes = parse_all({"circle 1.5", "rect 2 3", "square 4", "circle -1", "rect 0 2", "square 2.5"});
    for (const auto &s : shapes) report(*s);

    try {
        make_shape("hexagon 3");
    } catch (const std::invalid_argument &e) {
        std::cout << "invalid: " << e.what() << "\n";
        checksum += 3;
    }

    // Thrown inside libstdc++, caught here.
    std::vector<int> values(5);
    std::iota(values.begin(), values.end(), 10);
    try {
        std::cout << values.at(7) << "\n";
    } catch (const std::out_of_range &e) {
        std::cout << "out_of_range caught\n";
        checksum += 5;
    }
    try {
        std::stoi("not a number");
    } catch (const std::exception &e) {
        std::cout << "stoi threw " << (dynamic_cast<const std::invalid_argument *>(&e) ? "invalid_argument" : "other") << "\n";
    }

    // Through frames with destructors, rethrown, caught by base class and by catch-all.
    try {
        try {
            throw_through(6);
        } catch (ShapeError &e) {
            std::cout << "caught " << e.what() << " code " << e.code << " destroyed " << destroyed << "\n";
            e.code++;
            throw;
        }
    } catch (const std::runtime_error &e) {
        std::cout << "rethrown " << e.what() << " as " << typeid(e).name() << "\n";
    }
    try {
        throw 42;
    } catch (...) {
        std::cout << "catch-all\n";
        checksum += 1;
    }

    // A comparator that throws out of std::sort.
    std::vector<std::string> words = {"pear", "fig", "apple", "kiwi", "banana"};
    try {
        std::sort(words.begin(), words.end(), [](const std::string &a, const std::string &b) {
            if (a == "kiwi" || b == "kiwi") throw std::logic_error("no kiwis");
            return a < b;
        });
    } catch (const std::logic_error &e) {
        std::cout << "sort stopped: " << e.what() << "\n";
    }
    words.erase(std::remove(words.begin(), words.end(), "kiwi"), words.end());
    std::sort(words.begin(), words.end());
    for (const auto &w : words) std::cout << w << " ";
    std::cout << "\n";

    std::map<std::string, std::function<int(int)>> ops = {
        {"double", [](int x) { return 2 * x; }},
        {"square", [](int x) { return x * x; }},
        {"negate", [](int x) { return -x; }},
    };
    for (const auto &[name, op] : ops) {
        std::cout << name << "(7)=" << op(7) << "\n";
        checksum += op(7);
    }
    registry["two"] = 2;
    for (const auto &[k, v] : registry) std::cout << k << "=" << v << " ";
    std::cout << "\n";

    auto shared = std::make_shared<Square>(3);
    std::weak_ptr<Shape> weak = shared;
    std::cout << "shared use_count " << shared.use_count() << " expired " << weak.expired() << "\n";
    shared.reset();
    std::cout << "expired after reset " << weak.expired() << "\n";

    // The unwinder walks from libc's backtrace() back through 8 module frames and beyond.
    int frames = depth_backtrace(8);
    std::cout << "backtrace walks through module frames: " << (frames > 9 ? "yes" : "no") << "\n";

    std::thread worker([] {
        per_thread.name = "worker's";
        per_thread_values.push_back(4);
        std::printf("worker sees %zu values\n", per_thread_values.size());
    });
    worker.join();
    std::printf("main sees %zu values, %s\n", per_thread_values.size(), per_thread.name.c_str());
    checksum += static_cast<int>(per_thread_values.size());

    Announcer &once = lazy();
    std::cout << "lazy is " << once.name << "\n";
    shapes.clear();
    std::cout << "destroyed " << destroyed << "\n";
    checksum += destroyed;
    std::cout << "checksum " << checksum << "\n";
    return checksum & 0x7f;
}
