// The C++ program of ../cxx for Windows (mingw-w64, Win32 threads): the same shapes (compiled
// from ../cxx/shapes.cpp), exceptions thrown and caught across objects and from inside
// libstdc++, virtual dispatch, typeinfo and dynamic_cast, global objects with constructors
// and destructors (with priorities), function-local statics, a table of function pointers,
// thread-locals (emulated TLS; thread.cpp: one with a destructor on a CreateThread thread),
// and a stack walk through module frames by libgcc's SEH unwinder. `main uncaught` lets an
// exception escape main, out of the program's frames.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <sstream>
#include <typeinfo>

#include "../cxx/shapes.h"

int walk_stack(int depth);  // frames _Unwind_Backtrace sees from `depth` nested calls
int thread_local_destructors_after_a_thread();  // thread.cpp
long call_through(long (*const *table)(long, long), int index, long a, long b);

struct Announcer {
    std::string name;
    explicit Announcer(std::string n) : name(std::move(n)) { std::printf("construct %s\n", name.c_str()); }
    ~Announcer() { std::printf("destroy %s\n", name.c_str()); }
};

Announcer first_global("first");
static std::map<std::string, int> registry = {{"zero", 0}, {"one", 1}};
Announcer second_global("second");
static int early_value;
__attribute__((constructor(101))) static void early() { early_value = 7; }
__attribute__((constructor)) static void late() { std::printf("late constructor, early %d\n", early_value); }
__attribute__((destructor)) static void goodbye() { std::puts("destructor function ran"); }

static Announcer &lazy() {
    static Announcer instance("lazy");
    return instance;
}

static int checksum = 0;

thread_local int per_thread_counter = 5;
thread_local std::vector<int> per_thread_values = {1, 2, 3};

template <typename T> T checked_div(T a, T b) {
    if (b == T(0)) throw std::domain_error("division by zero");
    return a / b;
}
static long op_add(long a, long b) { return a + b; }
static long op_sub(long a, long b) { return a - b; }
static long op_mul(long a, long b) { return a * b; }
static long op_div(long a, long b) { return checked_div(a, b); }
static long (*const ops_table[])(long, long) = {op_add, op_sub, op_mul, op_div};
static const char *const op_names[] = {"add", "sub", "mul", "div"};

static void report(const Shape &shape) {
    std::ostringstream line;
    line << std::fixed << std::setprecision(3) << "#" << shape.id << " " << shape.name()
         << " area=" << shape.area() << " type=" << typeid(shape).name();
    if (auto rect = dynamic_cast<const Rect *>(&shape)) line << " rect(" << rect->w << "x" << rect->h << ")";
    std::cout << line.str() << "\n";
    checksum += static_cast<int>(shape.area()) + shape.id;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "uncaught") == 0) {
        std::puts("throwing out of main");
        std::fflush(stdout);
        throw std::runtime_error("escapes main");
    }
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

    // Through frames with destructors (in the other object), rethrown, caught by base class.
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

    // A table of function pointers, called from the other object; one of them throws.
    for (unsigned i = 0; i < sizeof ops_table / sizeof ops_table[0]; i++) {
        try {
            long r = call_through(ops_table, static_cast<int>(i), 42, i == 3 ? 0 : 6);
            std::cout << op_names[i] << " -> " << r << "\n";
            checksum += static_cast<int>(r);
        } catch (const std::exception &e) {
            std::cout << op_names[i] << " failed: " << e.what() << "\n";
            checksum += 10;
        }
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

    // libgcc's unwinder walks 8 nested module frames, and on past them.
    int frames = walk_stack(8);
    std::cout << "stack walk through module frames: " << (frames > 9 ? "yes" : "no") << "\n";

    per_thread_counter += 2;
    per_thread_values.push_back(4);
    std::printf("thread-locals %d and %zu values\n", per_thread_counter, per_thread_values.size());
    checksum += per_thread_counter + static_cast<int>(per_thread_values.size());
    int destroyed_after_thread = thread_local_destructors_after_a_thread();
    std::printf("thread-locals destroyed when a CreateThread thread ended: %d\n", destroyed_after_thread);
    checksum += destroyed_after_thread;

    Announcer &once = lazy();
    std::cout << "lazy is " << once.name << "\n";
    shapes.clear();
    std::cout << "destroyed " << destroyed << "\n";
    checksum += destroyed;
    std::cout << "checksum " << checksum << "\n";
    return checksum & 0x7f;
}
