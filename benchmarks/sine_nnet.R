#!/usr/bin/env Rscript
# R reference for the "sine" story: fit a 1-4-1 nnet (logistic hidden units,
# linear output) to examples/sine50.csv from fixed starting weights and print
# one JSON line with the fit, the iteration count and the time of one fit.
#
#   Rscript benchmarks/sine_nnet.R [path/to/sine50.csv]
suppressPackageStartupMessages(library(nnet))

args <- commandArgs(trailingOnly = TRUE)
path <- if (length(args) >= 1L) args[[1L]] else "examples/sine50.csv"
d <- read.csv(path)
x <- as.matrix(d$x)
y <- as.matrix(d$y)

fit_once <- function(maxit = 10000)
    nnet(x, y, size = 4, linout = TRUE, Wts = seq(0, 1, by = 1/12),
         maxit = maxit, abstol = 1e-8, reltol = 1e-9, trace = FALSE)

fit <- fit_once()

# nnet does not return vmmin's iteration count, and trace = TRUE only prints
# "iter N value V" when N %% 10 == 0.  But the run is deterministic and
# vmmin sets convergence (its `fail`) to 1 exactly when iter >= maxit, so a
# run with maxit = m is the full run cut off at iteration m: convergence is
# 1 for every m <= N and 0 for every m > N, where N is the final iteration
# count.  Binary search for the smallest m with convergence 0; N = m - 1.
iterations <- if (fit$convergence != 0) NA_integer_ else {
    lo <- 1L; hi <- 10000L            # convergence(lo) == 1?, convergence(hi) == 0
    if (fit_once(lo)$convergence == 0) hi <- lo
    while (hi - lo > 1L) {
        mid <- (lo + hi) %/% 2L
        if (fit_once(mid)$convergence == 0) hi <- mid else lo <- mid
    }
    hi - 1L
}

# Time the fit: one fit takes ~10 ms, near proc.time's resolution, so each
# repetition times a batch of fits and divides; report the median.
reps <- 7L; batch <- 20L
secs <- vapply(seq_len(reps), function(i) {
    t0 <- proc.time()[["elapsed"]]
    for (k in seq_len(batch)) fit_once()
    (proc.time()[["elapsed"]] - t0) / batch
}, numeric(1))

num <- function(v) paste(sprintf("%.17g", v), collapse = ", ")
cat(sprintf(paste0('{"mse": %s, "iterations": %d, "seconds": %s, "value": %s, ',
                   '"wts": [%s], "f_half_pi": %s}\n'),
            num(mean(fit$residuals^2)), iterations, num(median(secs)),
            num(fit$value), num(fit$wts),
            num(predict(fit, matrix(pi / 2)))))
