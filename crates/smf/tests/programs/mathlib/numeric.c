/* Numerical integration and root finding; callbacks go back into main.c. */
#include <math.h>
#include "mathlib.h"

double simpson(real_fn f, double a, double b, int intervals)
{
    if (intervals % 2)
        intervals++;
    double h = (b - a) / intervals;
    double s = f(a) + f(b);
    for (int i = 1; i < intervals; i++) {
        double x = a + h * i;
        s += (i % 2 ? 4.0 : 2.0) * f(x);
    }
    return s * h / 3.0;
}

double trapezoid(real_fn f, double a, double b, int intervals)
{
    double h = (b - a) / intervals;
    double s = 0.5 * (f(a) + f(b));
    for (int i = 1; i < intervals; i++)
        s += f(a + h * i);
    return s * h;
}

int newton(real_fn f, real_fn df, double x0, double tol, int max_iter, double *root)
{
    double x = x0;
    for (int i = 1; i <= max_iter; i++) {
        double d = df(x);
        if (d == 0.0)
            return -i;
        double step = f(x) / d;
        x -= step;
        if (fabs(step) < tol) {
            *root = x;
            return i;
        }
    }
    *root = x;
    return 0;
}

double bisect(real_fn f, double lo, double hi, int iters)
{
    double flo = f(lo);
    for (int i = 0; i < iters; i++) {
        double mid = 0.5 * (lo + hi);
        double fm = f(mid);
        if ((fm < 0) == (flo < 0)) {
            lo = mid;
            flo = fm;
        } else {
            hi = mid;
        }
    }
    return 0.5 * (lo + hi);
}
