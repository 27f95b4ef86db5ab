/* nnet's fitting criterion and its gradient, in C, for specc.nnet.
 *
 * A one-hidden-layer network of nnet's form (logistic hidden units, linear or
 * logistic outputs, one bias per unit) with its weights in nnet's flat order:
 * for each hidden unit its bias then its inputs, then for each output its
 * bias then the hidden units.  The criterion is nnet's: the sum over rows and
 * outputs of squared errors plus decay times the sum of squared weights.
 *
 * Why C: a BFGS fit of the sine story makes ~4,000 of these evaluations, and
 * in NumPy each one costs ~30 calls plus one Python-level exp per hidden
 * value; here it is a few hundred floating-point operations.
 *
 * Every sum runs in the order nnet.c's fpass/bpass use (sources in order
 * within a unit; rows in order for the error and the slopes; outputs last to
 * first when the output deltas flow back to a hidden unit), and exp is the C
 * library's, so results are bit for bit those of specc.nnet's NumPy port and
 * of R's nnet.  Build without -ffast-math and with -ffp-contract=off (see
 * pyproject.toml): fused multiply-adds would round differently.
 *
 * Called through ctypes (no Python objects cross this boundary); the tiny
 * module init below only makes the file an importable extension module.
 */
#include <Python.h>
#include <math.h>

/* Field order and types must match _Net in specc/nnet.py. */
typedef struct {
    int n_in, n_hidden, n_out, rows, linout;
    double decay;
    const double *inputs;  /* [rows][n_in] */
    const double *targets; /* [rows][n_out] */
    double *scratch;       /* 2 * n_hidden + 3 * n_out doubles */
} specc_nnet;

#define CLAMP 15.0 /* nnet.c's sigmoid is exactly 0 below -15 and 1 above 15 */

static double logistic(double s)
{
    if (s < -CLAMP) return 0.0;
    if (s > CLAMP) return 1.0;
    return 1.0 / (1.0 + exp(-s));
}

/* Hidden and output values of one row, out - target in diff, and the row's
 * squared errors added to *error one by one (nnet's running total). */
static void forward_row(const specc_nnet *net, const double *wts, int row,
                        double *hidden, double *out, double *diff, double *error)
{
    const double *x = net->inputs + (size_t)row * net->n_in;
    const double *t = net->targets + (size_t)row * net->n_out;
    const double *w = wts;
    for (int j = 0; j < net->n_hidden; j++, w += net->n_in + 1) {
        double s = w[0];
        for (int i = 0; i < net->n_in; i++) s += w[i + 1] * x[i];
        hidden[j] = logistic(s);
    }
    for (int k = 0; k < net->n_out; k++, w += net->n_hidden + 1) {
        double s = w[0];
        for (int j = 0; j < net->n_hidden; j++) s += w[j + 1] * hidden[j];
        out[k] = net->linout ? s : logistic(s);
        diff[k] = out[k] - t[k];
        *error += diff[k] * diff[k];
    }
}

static int n_weights(const specc_nnet *net)
{
    return net->n_hidden * (net->n_in + 1) + net->n_out * (net->n_hidden + 1);
}

static double penalty(const specc_nnet *net, const double *wts)
{
    double sum = 0.0;
    for (int i = 0, n = n_weights(net); i < n; i++) sum += net->decay * wts[i] * wts[i];
    return sum;
}

double specc_nnet_value(const specc_nnet *net, const double *wts)
{
    double *hidden = net->scratch, *out = hidden + net->n_hidden, *diff = out + net->n_out;
    double error = 0.0;
    for (int row = 0; row < net->rows; row++) forward_row(net, wts, row, hidden, out, diff, &error);
    return net->decay != 0.0 ? error + penalty(net, wts) : error;
}

/* Writes the gradient into grad and returns the criterion, both at wts. */
double specc_nnet_gradient(const specc_nnet *net, const double *wts, double *grad)
{
    const int n_in = net->n_in, n_hidden = net->n_hidden, n_out = net->n_out;
    const int hidden_block = n_hidden * (n_in + 1);
    double *hidden = net->scratch, *out = hidden + n_hidden, *diff = out + n_out;
    double *delta_out = diff + n_out, *delta_hidden = delta_out + n_out;
    const double *w_out = wts + hidden_block;
    double error = 0.0;

    for (int i = 0, n = n_weights(net); i < n; i++) grad[i] = net->decay != 0.0 ? 2 * net->decay * wts[i] : 0.0;
    for (int row = 0; row < net->rows; row++) {
        const double *x = net->inputs + (size_t)row * n_in;
        forward_row(net, wts, row, hidden, out, diff, &error);
        for (int k = 0; k < n_out; k++) {
            delta_out[k] = 2 * diff[k];
            if (!net->linout) delta_out[k] = delta_out[k] * (out[k] * (1.0 - out[k]));
        }
        for (int j = 0; j < n_hidden; j++) {
            double s = w_out[(size_t)(n_out - 1) * (n_hidden + 1) + j + 1] * delta_out[n_out - 1];
            for (int k = n_out - 2; k >= 0; k--) s += w_out[(size_t)k * (n_hidden + 1) + j + 1] * delta_out[k];
            delta_hidden[j] = s * (hidden[j] * (1.0 - hidden[j]));
        }
        double *g = grad;
        for (int j = 0; j < n_hidden; j++, g += n_in + 1) {
            g[0] += delta_hidden[j];
            for (int i = 0; i < n_in; i++) g[i + 1] += delta_hidden[j] * x[i];
        }
        for (int k = 0; k < n_out; k++, g += n_hidden + 1) {
            g[0] += delta_out[k];
            for (int j = 0; j < n_hidden; j++) g[j + 1] += delta_out[k] * hidden[j];
        }
    }
    return net->decay != 0.0 ? error + penalty(net, wts) : error;
}

/* Lets specc/nnet.py notice a stale build whose struct differs from its own. */
size_t specc_nnet_struct_size(void) { return sizeof(specc_nnet); }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_nnet_kernel",
                                    "nnet's criterion in C; specc.nnet loads it with ctypes.", -1, NULL};

PyMODINIT_FUNC PyInit__nnet_kernel(void) { return PyModule_Create(&module); }
