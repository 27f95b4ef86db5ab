/* specc's compiled nnet criterion: specc/nnet.py loads this file's shared library with ctypes.
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
 * where it stops, so the NumPy implementation in specc/nnet.py, the fallback where this file is not
 * compiled, follows the same order of operations and gets the same bits, and both retrace R's
 * own fit of the sine story (tests/test_nnet.py). The order is:
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

/* The problem as specc/nnet.py lays it out; field for field its _Problem (ctypes). */
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

/* Lets specc/nnet.py notice a stale build whose struct differs from its own. */
size_t specc_nnet_problem_size(void) { return sizeof(problem); }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_nnet_kernel",
                                    "specc's nnet criterion in C; specc.nnet loads it with ctypes.", -1, NULL};

PyMODINIT_FUNC PyInit__nnet_kernel(void) { return PyModule_Create(&module); }
