/* The fixed part of every compiled criterion (specc/train/ccode.py puts it before the
 * per-spec code): helper functions the operation table's C rules call, the losses, and a
 * variable-metric minimiser that runs restarts against the criterion with no Python in its loop.
 *
 * The minimiser is the method of specc/train/multistart.py (J. C. Nash, Compact Numerical
 * Methods for Computers, 2nd ed., 1990, Algorithm 21) for one restart at a time, with the same
 * constants and rules; docs/training.md describes it. All its state lives in arrays the caller
 * owns, and a call advances each restart by at most `budget` iterations, so Python can show
 * progress and take Ctrl-C between calls.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SP_SQRT_HALF 0.70710678118654752440
#define SP_INV_SQRT_2PI 0.39894228040143267794

typedef struct {
    int rows;
    double decay;             /* adds decay * sum(theta^2) */
    double scale;             /* the minimiser sees scale * criterion */
    const double *const *data; /* the inputs, then the targets: each [rows][units], row-major;
                                  then the fixed values, each its units row-major */
    double *work;             /* sp_work_size() doubles */
} sp_problem;

static double sp_criterion(const sp_problem *p, const double *theta, double *grad);

static inline double sp_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static inline double sp_sign(double x) { return (double)((x > 0.0) - (x < 0.0)); }
/* torch's softplus is the identity above 20, its default threshold */
static inline double sp_softplus(double x) { return x > 20.0 ? x : log1p(exp(x)); }

static double sp_max(const double *x, int n) {
    double top = x[0];
    for (int i = 1; i < n; i++) if (x[i] > top) top = x[i];
    return top;
}

static double sp_log_sum_exp(const double *x, int n) {
    double top = sp_max(x, n), total = 0.0;
    for (int i = 0; i < n; i++) total += exp(x[i] - top);
    return top + log(total);
}

static void sp_softmax(const double *x, double *y, int n) {
    double lse = sp_log_sum_exp(x, n);
    for (int i = 0; i < n; i++) y[i] = exp(x[i] - lse);
}

static void sp_softmax_grad(const double *y, const double *gy, double *gx, int n) {
    double dot = 0.0;
    for (int i = 0; i < n; i++) dot += gy[i] * y[i];
    for (int i = 0; i < n; i++) gx[i] += y[i] * (gy[i] - dot);
}

static void sp_log_softmax(const double *x, double *y, int n) {
    double lse = sp_log_sum_exp(x, n);
    for (int i = 0; i < n; i++) y[i] = x[i] - lse;
}

static void sp_log_softmax_grad(const double *y, const double *gy, double *gx, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += gy[i];
    for (int i = 0; i < n; i++) gx[i] += gy[i] - exp(y[i]) * total;
}

/* ---- elementwise maximum and minimum: a NaN on either side is the result, as in torch */
static inline double sp_maximum(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double sp_minimum(double a, double b) { return (a < b || a != a) ? a : b; }

/* ---- reductions over a vector's n units (sum, mean, max, min, norm), and layer_norm */
static double sp_min(const double *x, int n) {
    double low = x[0];
    for (int i = 1; i < n; i++) if (x[i] < low) low = x[i];
    return low;
}

static double sp_sum(const double *x, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += x[i];
    return total;
}

/* the gradient of a sum (d = 1) or a mean (d = n): each unit gets gy / d */
static void sp_spread(const double *gy, double *gx, int n, double d) {
    double g = gy[0] / d;
    for (int i = 0; i < n; i++) gx[i] += g;
}

/* max and min as torch's amax and amin: the units equal to the result share the gradient evenly */
static void sp_extreme_grad(const double *x, const double *y, const double *gy, double *gx, int n) {
    int ties = 0;
    for (int i = 0; i < n; i++) ties += x[i] == y[0];
    double g = gy[0] / ties;
    for (int i = 0; i < n; i++) if (x[i] == y[0]) gx[i] += g;
}

static double sp_norm(const double *x, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += x[i] * x[i];
    return sqrt(total);
}

/* torch's vector_norm: x * (gy / |x|), and nothing for a zero vector */
static void sp_norm_grad(const double *x, const double *y, const double *gy, double *gx, int n) {
    if (y[0] == 0.0) return;
    double scale = gy[0] / y[0];
    for (int i = 0; i < n; i++) gx[i] += x[i] * scale;
}

/* F.layer_norm with no weight or bias: biased variance, eps 1e-5; returns 1 / sqrt(var + eps) */
static double sp_layer_norm_rstd(const double *x, int n) {
    double mean = sp_sum(x, n) / n, var = 0.0;
    for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    return 1.0 / sqrt(var / n + 1e-5);
}

static void sp_layer_norm(const double *x, double *y, int n) {
    double mean = sp_sum(x, n) / n, rstd = sp_layer_norm_rstd(x, n);
    for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd;
}

/* gx = rstd * (gy - mean(gy) - y * mean(gy * y)) */
static void sp_layer_norm_grad(const double *x, const double *y, const double *gy, double *gx, int n) {
    double rstd = sp_layer_norm_rstd(x, n), mean_g = 0.0, mean_gy = 0.0;
    for (int i = 0; i < n; i++) { mean_g += gy[i]; mean_gy += gy[i] * y[i]; }
    mean_g /= n; mean_gy /= n;
    for (int i = 0; i < n; i++) gx[i] += rstd * (gy[i] - mean_g - y[i] * mean_gy);
}

/* ---- losses: one sample's term, times w; g (when not NULL) gets the term's gradient times w */
static double sp_sse(const double *y, const double *t, double *g, int n, double w) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double r = y[i] - t[i];
        total += r * r;
        if (g) g[i] += 2.0 * w * r;
    }
    return w * total;
}

/* torch's F.binary_cross_entropy: each log clamped at -100, the gradient's denominator at 1e-12 */
static double sp_bce(const double *y, const double *t, double *g, int n, double w) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        total -= t[i] * fmax(log(y[i]), -100.0) + (1.0 - t[i]) * fmax(log1p(-y[i]), -100.0);
        if (g) g[i] += w * (y[i] - t[i]) / fmax(y[i] * (1.0 - y[i]), 1e-12);
    }
    return w * total;
}

/* torch's F.cross_entropy with class probabilities: -sum t * log_softmax(scores) */
static double sp_cross_entropy(const double *s, const double *t, double *g, int n, double w) {
    double lse = sp_log_sum_exp(s, n), total = 0.0, mass = 0.0;
    for (int i = 0; i < n; i++) { total -= t[i] * (s[i] - lse); mass += t[i]; }
    if (g) for (int i = 0; i < n; i++) g[i] += w * (exp(s[i] - lse) * mass - t[i]);
    return w * total;
}

/* cross_entropy of an output that is already softmax(...): -sum t * max(log p, -100) */
static double sp_nll_probabilities(const double *p, const double *t, double *g, int n, double w) {
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double lp = log(p[i]);
        total -= t[i] * fmax(lp, -100.0);
        if (g && lp > -100.0) g[i] -= w * t[i] / p[i];
    }
    return w * total;
}

/* ---- the criterion at R points */
int sp_parameters(void);

void sp_evaluate(const sp_problem *p, int count, const double *X, double *F, double *G) {
    int n = sp_parameters();
    for (int r = 0; r < count; r++)
        F[r] = sp_criterion(p, X + (size_t)r * n, G ? G + (size_t)r * n : NULL);
}

/* ---- the minimiser */
enum { SP_NEW = -1, SP_RUNNING = 0, SP_CONVERGED = 1, SP_MAX_ITER = 2, SP_NOT_FINITE = 3 };
enum { C_STATUS, C_FRESH, C_UPDATES, C_ITERATIONS, C_EVALUATIONS, C_FIELDS };

#define SP_STEP_SHRINK 0.2 /* a rejected step is multiplied by this */
#define SP_ACCTOL 1e-4     /* sufficient decrease: f(x + t d) <= f(x) + ACCTOL t (g.d) */
#define SP_MOVED 10.0      /* a trial point has moved when MOVED + x changes in some coordinate */

static int sp_all_finite(const double *v, int n) {
    for (int i = 0; i < n; i++) if (!isfinite(v[i])) return 0;
    return 1;
}

static int sp_moved(const double *x, const double *trial, int n) {
    for (int i = 0; i < n; i++) if (SP_MOVED + trial[i] != SP_MOVED + x[i]) return 1;
    return 0;
}

static double sp_dot(const double *a, const double *b, int n) {
    double total = 0.0;
    for (int i = 0; i < n; i++) total += a[i] * b[i];
    return total;
}

/* A downhill direction d = -H g (from a reset H where needed) and its slope; 0 when even -g
 * cannot move x (the restart is done). */
static int sp_direction(double *H, const double *x, const double *g, double *d, double *trial,
                        double *slope, int64_t *c, int n) {
    for (;;) {
        if (c[C_FRESH]) {
            memset(H, 0, sizeof(double) * (size_t)n * n);
            for (int i = 0; i < n; i++) H[(size_t)i * n + i] = 1.0;
        }
        for (int i = 0; i < n; i++) d[i] = -sp_dot(H + (size_t)i * n, g, n);
        *slope = sp_dot(d, g, n);
        for (int i = 0; i < n; i++) trial[i] = x[i] + d[i];
        if (*slope < 0.0 && sp_moved(x, trial, n)) return 1;
        if (c[C_FRESH]) return 0;
        c[C_FRESH] = 1;
        c[C_UPDATES] = 0;
    }
}

/* H += a s s' - b (Hy s' + s Hy') with b = 1 / s.y, a = b (1 + b y.Hy); Hy in hy */
static void sp_bfgs_update(double *H, const double *s, const double *y, double *hy, double sy, int n) {
    double b = 1.0 / sy;
    for (int i = 0; i < n; i++) hy[i] = sp_dot(H + (size_t)i * n, y, n);
    double a = b * (1.0 + b * sp_dot(y, hy, n));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            H[(size_t)i * n + j] += a * s[i] * s[j] - b * (hy[i] * s[j] + s[i] * hy[j]);
}

/* One restart: at most `budget` more accepted steps. */
static void sp_run(const sp_problem *p, int n, double *x, double *f, double *g, double *H, int64_t *c,
                   double *history, int64_t capacity, int64_t max_iter, double abstol, double reltol,
                   int64_t budget, double *scratch) {
    double *d = scratch, *trial = d + n, *gt = trial + n, *s = gt + n, *y = s + n;
    if (c[C_STATUS] == SP_NEW) {
        *f = sp_criterion(p, x, g);
        c[C_EVALUATIONS] = 1;
        c[C_FRESH] = 1;
        c[C_UPDATES] = c[C_ITERATIONS] = 0;
        if (!isfinite(*f) || !sp_all_finite(g, n)) {
            *f = NAN;
            c[C_STATUS] = SP_NOT_FINITE;
            return;
        }
        if (capacity > 0) history[0] = *f;
        c[C_STATUS] = max_iter < 1 ? SP_MAX_ITER : SP_RUNNING;
    }
    for (int64_t done = 0; c[C_STATUS] == SP_RUNNING && done < budget; done++) {
        double slope, step = 1.0, ft;
        if (!sp_direction(H, x, g, d, trial, &slope, c, n)) {
            c[C_STATUS] = SP_CONVERGED; /* a stationary point, or one the arithmetic cannot leave */
            return;
        }
        for (;;) { /* backtracking line search */
            ft = sp_criterion(p, trial, gt);
            c[C_EVALUATIONS]++;
            if (isfinite(ft) && sp_all_finite(gt, n) && ft <= *f + SP_ACCTOL * step * slope) break;
            step *= SP_STEP_SHRINK;
            for (int i = 0; i < n; i++) trial[i] = x[i] + step * d[i];
            if (!sp_moved(x, trial, n)) { /* too small a step to move: the search failed */
                if (c[C_FRESH]) { c[C_STATUS] = SP_CONVERGED; return; }
                c[C_FRESH] = 1;
                c[C_UPDATES] = 0;
                if (!sp_direction(H, x, g, d, trial, &slope, c, n)) { c[C_STATUS] = SP_CONVERGED; return; }
                step = 1.0;
            }
        }
        int tiny = fabs(*f - ft) <= reltol * (fabs(*f) + reltol);
        int finished = ft <= abstol || (tiny && c[C_FRESH]);
        for (int i = 0; i < n; i++) {
            s[i] = trial[i] - x[i];
            y[i] = gt[i] - g[i];
            x[i] = trial[i];
            g[i] = gt[i];
        }
        *f = ft;
        c[C_ITERATIONS]++;
        if (c[C_ITERATIONS] < capacity) history[c[C_ITERATIONS]] = ft;
        c[C_FRESH] = 0;
        if (finished) { c[C_STATUS] = SP_CONVERGED; return; }
        if (c[C_ITERATIONS] >= max_iter) { c[C_STATUS] = SP_MAX_ITER; return; }
        double sy = sp_dot(s, y, n);
        int curved = !tiny && sy > 0.0; /* a tiny improvement resets H */
        if (curved) {
            sp_bfgs_update(H, s, y, trial /* free now: Hy */, sy, n);
            c[C_UPDATES]++;
        }
        if (!curved || c[C_UPDATES] > 2 * n) {
            c[C_FRESH] = 1;
            c[C_UPDATES] = 0;
        }
    }
}

/* Advance every restart by at most `budget` iterations; returns how many are still running.
 * X, G [R][n]; F [R]; H [R][n][n]; counters [R][C_FIELDS] (status SP_NEW to start one);
 * history [R][capacity]; scratch 5n doubles. */
int sp_minimize(const sp_problem *p, int R, double *X, double *F, double *G, double *H, int64_t *counters,
                double *history, int64_t capacity, int64_t max_iter, double abstol, double reltol, int64_t budget,
                double *scratch) {
    int n = sp_parameters(), running = 0;
    for (int r = 0; r < R; r++) {
        int64_t *c = counters + (size_t)r * C_FIELDS;
        sp_run(p, n, X + (size_t)r * n, F + r, G + (size_t)r * n, H + (size_t)r * n * n, c,
               history + (size_t)r * capacity, capacity, max_iter, abstol, reltol, budget, scratch);
        running += c[C_STATUS] == SP_RUNNING;
    }
    return running;
}
