// Shapes: a class hierarchy split across objects (virtual dispatch, typeinfo, dynamic_cast).
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

struct Shape {
    virtual ~Shape();
    virtual double area() const = 0;
    virtual std::string name() const = 0;
    int id = 0;
};

struct Circle : Shape {
    explicit Circle(double r);
    double area() const override;
    std::string name() const override;
    double radius;
};

struct Rect : Shape {
    Rect(double w, double h);
    double area() const override;
    std::string name() const override;
    double w, h;
};

struct Square : Rect {
    explicit Square(double side);
    std::string name() const override;
};

// Errors thrown in one object and caught in another.
struct ShapeError : std::runtime_error {
    ShapeError(const std::string &what, int code);
    int code;
};
struct BadSize : ShapeError {
    explicit BadSize(double size);
};

std::unique_ptr<Shape> make_shape(const std::string &spec);  // throws BadSize, std::invalid_argument
std::vector<std::unique_ptr<Shape>> parse_all(const std::vector<std::string> &specs);
int depth_backtrace(int depth);  // frames backtrace() sees from `depth` nested calls
void throw_through(int depth);   // throws from `depth` frames down, through destructors
extern int destroyed;
