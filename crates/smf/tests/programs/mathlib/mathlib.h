#ifndef MATHLIB_H
#define MATHLIB_H

typedef double (*real_fn)(double);

/* numeric.c */
double simpson(real_fn f, double a, double b, int intervals);
double trapezoid(real_fn f, double a, double b, int intervals);
int newton(real_fn f, real_fn df, double x0, double tol, int max_iter, double *root);
double bisect(real_fn f, double lo, double hi, int iters);

/* main.c */
extern volatile double seed_values[8];

#endif
