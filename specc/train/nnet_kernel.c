/* specc's compiled nnet criterion and its minimiser: specc/train/nnet.py loads this file's shared
 * library with ctypes.
 *
 * The model is the network R's nnet fits, as Venables & Ripley describe it (Modern Applied
 * Statistics with S, 4th ed., section 8.10): one hidden layer of logistic units, linear or logistic
 * output units, every unit with a bias. The criterion is the sum of squared errors plus decay
 * times the sum of squared weights, and the weights form one vector in nnet's `Wts` order: for each
 * hidden unit its bias then its input weights, then for each output unit its bias then its hidden
 * weights. The logistic saturates as nnet's does: exactly 0 below -15, exactly 1 above 15.
 *
 * The work runs layer by layer over all data rows at once. Every array below is unit-major: one
 * row of `rows` values per unit (an input, a hidden unit, an output), so each loop over data rows
 * runs along contiguous memory.
 *
 * Arithmetic. A BFGS fit takes thousands of steps, and the last bit of a gradient can change
 * where it stops, so the NumPy implementation in specc/train/nnet.py, the fallback where this
 * file is not compiled, follows the same order of operations and gets the same bits, and both
 * retrace R's own fit of the sine story (tests/test_nnet.py). The order is:
 *   - a unit's input is its bias plus weight times source for each source in Wts order;
 *   - the logistic is 1 / (1 + exp(-s)), with the C library's exp;
 *   - the squared errors are one running total, data row by data row, each row's outputs in turn;
 *   - a hidden unit's back-propagated error sums over the output units in order;
 *   - each gradient entry is one running total over the data rows in order, starting from
 *     2 decay w (0 without decay).
 * Build without -ffast-math and with -ffp-contract=off (setup.py): fused multiply-adds would round
 * differently. Vectorising a loop over data rows is harmless: each row's operations stay the same.
 */
#include <Python.h>
#include <math.h>
#include <stddef.h>

/* The problem as specc/train/nnet.py lays it out; field for field its _Problem (ctypes). */
typedef struct {
    int n_in, n_hidden, n_out, rows, linear_outputs;
    double decay;
    const double *x;      /* [n_in][rows] */
    const double *target; /* [n_out][rows] */
    double *work;         /* 2 * (n_hidden + n_out) * rows doubles, see the layout below */
} problem;

#define SATURATION 15.0

static double squash(double s)
{
    if (s < -SATURATION) return 0.0;
    if (s > SATURATION) return 1.0;
    return 1.0 / (1.0 + exp(-s));
}

/* Views into the work area: activations of the hidden and output units, the output errors
 * (turned into output deltas by the backward pass) and the hidden deltas. */
typedef struct {
    double *hidden, *output, *error, *hidden_delta;
} views;

static views split_work(const problem *p)
{
    views v;
    v.hidden = p->work;
    v.output = v.hidden + (size_t)p->n_hidden * p->rows;
    v.error = v.output + (size_t)p->n_out * p->rows;
    v.hidden_delta = v.error + (size_t)p->n_out * p->rows;
    return v;
}

/* act[r] = bias + sum_i weight[i] * source_i[r], for every data row r, then squashed if asked. */
static void unit_input(const double *weights, int n_sources, const double *sources, int rows,
                       int squashed, double *act)
{
    for (int r = 0; r < rows; r++) act[r] = weights[0];
    for (int i = 0; i < n_sources; i++) {
        const double w = weights[i + 1], *src = sources + (size_t)i * rows;
        for (int r = 0; r < rows; r++) act[r] += w * src[r];
    }
    if (squashed)
        for (int r = 0; r < rows; r++) act[r] = squash(act[r]);
}

static int n_weights(const problem *p)
{
    return p->n_hidden * (p->n_in + 1) + p->n_out * (p->n_hidden + 1);
}

/* The forward pass: activations and errors in the work area; returns the criterion. */
static double forward(const problem *p, const double *wts)
{
    const views v = split_work(p);
    const int rows = p->rows, hidden_block = p->n_hidden * (p->n_in + 1);
    for (int j = 0; j < p->n_hidden; j++)
        unit_input(wts + (size_t)j * (p->n_in + 1), p->n_in, p->x, rows, 1, v.hidden + (size_t)j * rows);
    for (int k = 0; k < p->n_out; k++) {
        double *out = v.output + (size_t)k * rows, *err = v.error + (size_t)k * rows;
        const double *target = p->target + (size_t)k * rows;
        unit_input(wts + hidden_block + (size_t)k * (p->n_hidden + 1), p->n_hidden, v.hidden, rows,
                   !p->linear_outputs, out);
        for (int r = 0; r < rows; r++) err[r] = out[r] - target[r];
    }
    double total = 0.0;
    for (int r = 0; r < rows; r++)
        for (int k = 0; k < p->n_out; k++) {
            const double e = v.error[(size_t)k * rows + r];
            total += e * e;
        }
    if (p->decay != 0.0) {
        double squares = 0.0;
        for (int i = 0, n = n_weights(p); i < n; i++) squares += wts[i] * wts[i];
        total += p->decay * squares;
    }
    return total;
}

/* grad[0] += sum_r delta[r] and grad[i + 1] += sum_r delta[r] * source_i[r], rows in order. */
static void unit_gradient(const double *delta, int n_sources, const double *sources, int rows, double *grad)
{
    double sum = grad[0];
    for (int r = 0; r < rows; r++) sum += delta[r];
    grad[0] = sum;
    for (int i = 0; i < n_sources; i++) {
        const double *src = sources + (size_t)i * rows;
        sum = grad[i + 1];
        for (int r = 0; r < rows; r++) sum += delta[r] * src[r];
        grad[i + 1] = sum;
    }
}

/* The backward pass after forward(): the gradient of the criterion into grad. */
static void backward(const problem *p, const double *wts, double *grad)
{
    const views v = split_work(p);
    const int rows = p->rows, n_hidden = p->n_hidden, hidden_block = n_hidden * (p->n_in + 1);
    const double *w_out = wts + hidden_block;

    /* Output deltas d(criterion)/d(output unit's input), in place of the errors. */
    for (int k = 0; k < p->n_out; k++) {
        double *delta = v.error + (size_t)k * rows;
        const double *out = v.output + (size_t)k * rows;
        for (int r = 0; r < rows; r++) {
            delta[r] = 2.0 * delta[r];
            if (!p->linear_outputs) delta[r] = delta[r] * (out[r] * (1.0 - out[r]));
        }
    }
    /* Hidden deltas: the output deltas carried back through the output weights, output by output,
     * times the logistic's slope h (1 - h). */
    for (int j = 0; j < n_hidden; j++) {
        double *delta = v.hidden_delta + (size_t)j * rows;
        const double *h = v.hidden + (size_t)j * rows;
        for (int r = 0; r < rows; r++) delta[r] = w_out[j + 1] * v.error[r];
        for (int k = 1; k < p->n_out; k++) {
            const double w = w_out[(size_t)k * (n_hidden + 1) + j + 1], *out_delta = v.error + (size_t)k * rows;
            for (int r = 0; r < rows; r++) delta[r] += w * out_delta[r];
        }
        for (int r = 0; r < rows; r++) delta[r] = delta[r] * (h[r] * (1.0 - h[r]));
    }
    for (int i = 0, n = n_weights(p); i < n; i++) grad[i] = p->decay != 0.0 ? 2.0 * p->decay * wts[i] : 0.0;
    for (int j = 0; j < n_hidden; j++)
        unit_gradient(v.hidden_delta + (size_t)j * rows, p->n_in, p->x, rows, grad + (size_t)j * (p->n_in + 1));
    for (int k = 0; k < p->n_out; k++)
        unit_gradient(v.error + (size_t)k * rows, n_hidden, v.hidden, rows,
                      grad + hidden_block + (size_t)k * (n_hidden + 1));
}

/* The criterion at wts. */
double specc_nnet_criterion(const problem *p, const double *wts)
{
    return forward(p, wts);
}

/* The criterion at wts, returned, and its gradient, written into grad. */
double specc_nnet_criterion_and_gradient(const problem *p, const double *wts, double *grad)
{
    const double value = forward(p, wts);
    backward(p, wts, grad);
    return value;
}

/* Lets specc/train/nnet.py notice a stale build whose struct differs from its own. */
size_t specc_nnet_problem_size(void) { return sizeof(problem); }

/* ---------------------------------------------------------------- the minimiser
 *
 * specc/train/bfgs.py's vmmin (Nash's variable-metric method, Algorithm 21), run here against the
 * criterion above with no Python call per iteration. It is the same algorithm with the same order
 * of every floating-point operation, as bfgs.py's module docstring fixes it, so it reaches the same
 * points, values, histories and counts to the last bit (tests/test_nnet.py compares the two):
 *   - every dot product is a running sum from index 0, started from its first product (not 0.0);
 *   - (H v)_i adds H[j][i] v[j] for j = 0, 1, ..., started from H[0][i] v[0];
 *   - the gradient is kept negated, v = -g, and the direction is t = H v, its slope -(t·v);
 *   - a trial point is base + t (step 1) or base + t * step, accepted when it is finite and
 *     f <= fmin + (slope * step) * 1e-4; the search gives up when MOVE_OFFSET + x equals
 *     MOVE_OFFSET + base in every coordinate, and x stays at the last trial point;
 *   - the update takes c = (-g_old) - (-g_new), d = t * step (t itself at step 1), y = H c, y·c,
 *     d·c, w = (1 + y·c / d·c) d, and adds ((w_p d_q - y_p d_q) - d_p y_q) / d·c, formed for
 *     p >= q, to both H[p][q] and H[q][p]; d·c <= 0 or more than 2n updates reset H to I;
 *   - the latest value f ends a pass without a step when !(f > abstol && |f - fmin| >
 *     reltol (|fmin| + reltol)), and becomes fmin even so; a pass without a step resets H to I,
 *     or stops the run if H was I already; the run also stops once iterations >= max_iter;
 *   - iterations count gradient evaluations (the start's included), evaluations criterion values.
 * One difference: a search whose step has shrunk to exactly 0 while its trial points still move
 * (possible only along a direction with an infinite entry) fails, where the Python loop would go
 * on evaluating NaN trial points forever.
 *
 * The run is resumable: everything it keeps lives in the caller's arrays, `state` (doubles, see
 * vm_views) and `counters` (VM_COUNTERS int64), and each call runs at most `passes` passes of the
 * main loop, so that the caller can show progress between calls. Each pass appends at most one value
 * to `history` (capacity entries, the start's value first), and a call never runs more passes than
 * the history has room for: with a full history it returns VM_RUNNING at once, for the caller to
 * give it a longer one. */

#define SHRINK 0.2
#define ARMIJO 1e-4
#define MOVE_OFFSET 10.0

enum { VM_PHASE, VM_ITERATIONS, VM_EVALUATIONS, VM_UPDATES, VM_COUNTERS };  /* counters[] */
enum { VM_NEW = 0, VM_STARTED = 1, VM_FINISHED = 2 };                      /* counters[VM_PHASE] */
enum { VM_DONE = 0, VM_RUNNING = 1, VM_NOT_FINITE = -1, VM_BAD_ARGUMENT = -2 }; /* return values */

/* The state's layout: fmin, f_last, then ten vectors of n, then H (n x n, row-major). */
typedef struct {
    double *fmin, *f_last;
    double *x;        /* the current point (after a search: its last trial point); x0 before the start */
    double *base;     /* where the current search started */
    double *start;    /* MOVE_OFFSET + base, kept from when base was a trial point */
    double *moved;    /* MOVE_OFFSET + the trial point */
    double *downhill; /* -g at the point the direction is computed from */
    double *previous; /* -g before the latest step */
    double *t;        /* the direction; the step d = s t after an update */
    double *y, *w, *change;
    double *H;
} vm_views;

static size_t vm_state_size(size_t n) { return 2 + 10 * n + n * n; }

static vm_views vm_split(double *state, size_t n)
{
    vm_views v;
    v.fmin = state;
    v.f_last = state + 1;
    double *vec = state + 2;
    v.x = vec;
    v.base = vec + n;
    v.start = vec + 2 * n;
    v.moved = vec + 3 * n;
    v.downhill = vec + 4 * n;
    v.previous = vec + 5 * n;
    v.t = vec + 6 * n;
    v.y = vec + 7 * n;
    v.w = vec + 8 * n;
    v.change = vec + 9 * n;
    v.H = vec + 10 * n;
    return v;
}

/* a·b, a running sum from index 0 (n >= 1). */
static double running_dot(const double *a, const double *b, int n)
{
    double sum = a[0] * b[0];
    for (int i = 1; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* out = H v, entry i summing H[j][i] v[j] over j = 0, 1, ... (the rows of H taken in turn). */
static void times_H(const double *H, const double *v, int n, double *out)
{
    for (int i = 0; i < n; i++) out[i] = H[i] * v[0];
    for (int j = 1; j < n; j++) {
        const double *row = H + (size_t)j * n, vj = v[j];
        for (int i = 0; i < n; i++) out[i] += row[i] * vj;
    }
}

static void set_identity(double *H, int n)
{
    for (size_t i = 0; i < (size_t)n * n; i++) H[i] = 0.0;
    for (int i = 0; i < n; i++) H[(size_t)i * n + i] = 1.0;
}

/* -grad f at the point forward() was last called with, into out. */
static void downhill_at(const problem *p, const double *x, double *out)
{
    backward(p, x, out);
    for (int i = 0, n = n_weights(p); i < n; i++) out[i] = -out[i];
}

/* The backtracking search from x along t; x is left at the last trial point. Returns whether a
 * point was accepted, the step in *step. */
static int line_search(const problem *p, const vm_views *v, int n, double slope, double *step_out,
                       long long *evaluations_total)
{
    const double bound = *v->fmin;
    double step = 1.0, f = 0.0;
    long long evaluations = 0;
    int accepted = 0;
    for (int i = 0; i < n; i++) v->base[i] = v->x[i];
    for (;;) {
        int same = 1;
        for (int i = 0; i < n; i++) {
            v->x[i] = step == 1.0 ? v->base[i] + v->t[i] : v->base[i] + v->t[i] * step;
            v->moved[i] = v->x[i] + MOVE_OFFSET;
            if (v->moved[i] != v->start[i]) same = 0;
        }
        if (same || step == 0.0) break;  /* step 0: see "One difference" above */
        f = forward(p, v->x);
        evaluations++;
        if (f <= bound + slope * step * ARMIJO && isfinite(f)) {
            accepted = 1;
            break;
        }
        step *= SHRINK;
    }
    for (int i = 0; i < n; i++) v->start[i] = v->moved[i];
    if (evaluations) {
        *v->f_last = f;
        *evaluations_total += evaluations;
    }
    *step_out = step;
    return accepted;
}

/* After a step to x (forward() was last called there): the gradient at x and the update of H. */
static void update(const problem *p, const vm_views *v, int n, double step, long long *updates)
{
    for (int i = 0; i < n; i++) v->previous[i] = v->downhill[i];
    downhill_at(p, v->x, v->downhill);
    for (int i = 0; i < n; i++) v->change[i] = v->previous[i] - v->downhill[i];  /* g_new - g_old */
    double *d = v->t;
    if (step != 1.0)
        for (int i = 0; i < n; i++) d[i] = d[i] * step;
    times_H(v->H, v->change, n, v->y);
    const double yc = running_dot(v->y, v->change, n), dc = running_dot(d, v->change, n);
    if (dc <= 0) {  /* no positive curvature along the step */
        set_identity(v->H, n);
        *updates = 0;
        return;
    }
    const double scale = 1.0 + yc / dc;
    for (int i = 0; i < n; i++) v->w[i] = d[i] * scale;
    for (int r = 0; r < n; r++)
        for (int q = 0; q <= r; q++) {
            const double u = ((v->w[r] * d[q] - v->y[r] * d[q]) - v->y[q] * d[r]) / dc;
            v->H[(size_t)r * n + q] = v->H[(size_t)r * n + q] + u;
            if (q != r) v->H[(size_t)q * n + r] = v->H[(size_t)q * n + r] + u;
        }
    if (++*updates > 2 * (long long)n) {
        set_identity(v->H, n);
        *updates = 0;
    }
}

/* The doubles `state` must hold for this problem. */
size_t specc_nnet_vmmin_state_size(const problem *p) { return vm_state_size((size_t)n_weights(p)); }

/* Runs up to `passes` passes of vmmin's main loop (see above). On the first call counters[VM_PHASE]
 * is VM_NEW (0) and the state's x holds x0; the other counters and the rest of the state are
 * set here. Returns VM_RUNNING when more passes are to run, VM_DONE when the minimiser has stopped
 * (iterations < max_iter: by a rule; else max_iter was reached), VM_NOT_FINITE when f(x0) is not
 * finite (in f_last), VM_BAD_ARGUMENT for a call that cannot be honoured. */
int specc_nnet_vmmin(const problem *p, double *state, long long *counters, double *history, long long capacity,
                     long long max_iter, double abstol, double reltol, long long passes)
{
    const int n = n_weights(p);
    if (n < 1 || max_iter < 1 || capacity < 1 || passes < 0) return VM_BAD_ARGUMENT;
    const vm_views v = vm_split(state, (size_t)n);
    long long *iterations = &counters[VM_ITERATIONS], *updates = &counters[VM_UPDATES];

    if (counters[VM_PHASE] == VM_FINISHED) return VM_DONE;
    if (counters[VM_PHASE] != VM_STARTED) {
        if (counters[VM_PHASE] != VM_NEW) return VM_BAD_ARGUMENT;
        const double f = forward(p, v.x);
        counters[VM_EVALUATIONS] = 1;
        *v.f_last = f;
        if (!isfinite(f)) {
            counters[VM_PHASE] = VM_FINISHED;
            return VM_NOT_FINITE;
        }
        downhill_at(p, v.x, v.downhill);
        for (int i = 0; i < n; i++) v.start[i] = v.x[i] + MOVE_OFFSET;
        *v.fmin = f;
        *iterations = 1;
        history[0] = f;
        set_identity(v.H, n);
        *updates = 0;
        counters[VM_PHASE] = VM_STARTED;
    }
    if (*iterations > capacity) return VM_BAD_ARGUMENT;
    /* Each pass appends at most one value to the history. */
    const long long room = capacity - *iterations, limit = passes < room ? passes : room;
    for (long long pass = 0; pass < limit; pass++) {
        times_H(v.H, v.downhill, n, v.t);                  /* t = H (-g) */
        const double slope = -running_dot(v.t, v.downhill, n);  /* t·g = -(t·(-g)), exactly */
        int progress = 0;
        if (slope < 0.0) {
            double step;
            const int accepted = line_search(p, &v, n, slope, &step, &counters[VM_EVALUATIONS]);
            const double f = *v.f_last, fmin = *v.fmin;
            if (!(f > abstol && fabs(f - fmin) > reltol * (fabs(fmin) + reltol))) {
                *v.fmin = f;  /* converging: f <= abstol, or too small a change */
            } else if (accepted) {
                *v.fmin = f;
                history[*iterations] = f;
                ++*iterations;
                update(p, &v, n, step, updates);
                progress = 1;
            }
        }
        int stop = 0;
        if (!progress) {  /* no step, or too small a one: retry along -g, unless that was -g */
            if (*updates == 0) {
                stop = 1;
            } else {
                set_identity(v.H, n);
                *updates = 0;
            }
        }
        if (stop || *iterations >= max_iter) {
            counters[VM_PHASE] = VM_FINISHED;
            return VM_DONE;
        }
    }
    return VM_RUNNING;
}

/* Lets specc/train/nnet.py notice a build whose functions differ from what it calls: bump on any change
 * of an exported function's arguments, results or state layout. */
int specc_nnet_interface(void) { return 2; }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_nnet_kernel",
                                    "specc's nnet criterion and its BFGS minimiser in C; specc.train.nnet loads it with ctypes.", -1, NULL};

PyMODINIT_FUNC PyInit__nnet_kernel(void) { return PyModule_Create(&module); }
