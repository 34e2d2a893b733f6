#include "shapes.h"

#include <cmath>
#include <cstdio>
#include <sstream>

int destroyed = 0;

Shape::~Shape() { destroyed++; }

Circle::Circle(double r) : radius(r) {
    if (r <= 0) throw BadSize(r);
}
double Circle::area() const { return M_PI * radius * radius; }
std::string Circle::name() const { return "circle"; }

Rect::Rect(double w_, double h_) : w(w_), h(h_) {
    if (w <= 0 || h <= 0) throw BadSize(w <= 0 ? w : h);
}
double Rect::area() const { return w * h; }
std::string Rect::name() const { return "rect"; }

Square::Square(double side) : Rect(side, side) {}
std::string Square::name() const { return "square"; }

ShapeError::ShapeError(const std::string &what, int code_)
    : std::runtime_error(what), code(code_) {}
BadSize::BadSize(double size) : ShapeError("bad size " + std::to_string(size), 7) {}

static int next_id = 1;

std::unique_ptr<Shape> make_shape(const std::string &spec) {
    std::istringstream in(spec);
    std::string kind;
    double a = 0, b = 0;
    in >> kind >> a;
    std::unique_ptr<Shape> shape;
    if (kind == "circle") {
        shape = std::make_unique<Circle>(a);
    } else if (kind == "rect") {
        in >> b;
        shape = std::make_unique<Rect>(a, b);
    } else if (kind == "square") {
        shape = std::make_unique<Square>(a);
    } else {
        throw std::invalid_argument("unknown shape '" + kind + "'");
    }
    shape->id = next_id++;
    return shape;
}

std::vector<std::unique_ptr<Shape>> parse_all(const std::vector<std::string> &specs) {
    std::vector<std::unique_ptr<Shape>> out;
    for (const auto &spec : specs) {
        try {
            out.push_back(make_shape(spec));
        } catch (const BadSize &e) {
            std::printf("skipped '%s': %s (code %d)\n", spec.c_str(), e.what(), e.code);
        }
    }
    return out;
}

struct Noisy {
    int n;
    ~Noisy() { destroyed += 100; }
};

void throw_through(int depth) {
    Noisy guard{depth};
    if (depth == 0) throw ShapeError("deep", depth + 42);
    throw_through(depth - 1);
    (void)guard;
}
