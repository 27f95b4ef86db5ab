#!/usr/bin/env Rscript
# R side of the regression suite (benchmarks/suite.py): nnet's fits of the suite's data sets.
#
#   Rscript benchmarks/suite.R DIR
#
# Loads nnet, prints {"ready": true}, then serves requests read one per line on standard input,
#   NAME HIDDEN SEED STARTS MAXIT MIN_SECONDS
# by reading DIR/NAME.csv (columns x1..xk, y), fitting
#   nnet(x, y, size = HIDDEN, linout = TRUE, maxit = MAXIT, trace = FALSE)
# STARTS times after set.seed(SEED) (nnet's own random starts, rang = 0.7), and printing one JSON
# line: per start the training RMSE, sqrt(mean((fitted - y)^2)), and nnet's criterion (the SSE);
# and the time of one fit. The STARTS fits are repeated (same seed) until MIN_SECONDS of wall
# time have passed, so a fit of a few ms is timed well above proc.time's resolution; the time
# is the total over the batches divided by the number of fits. Reading the CSV and R's start-up
# are outside the timing. One process serves every request, so the driver can interleave R's
# rounds with specc's without paying R's start-up each time. An empty line or EOF ends it.
suppressPackageStartupMessages(library(nnet))

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1L) args[[1L]] else "."
num <- function(v) paste(sprintf("%.17g", v), collapse = ", ")
cat('{"ready": true, "r": "', R.version.string, '", "nnet": "',
    as.character(packageVersion("nnet")), '"}\n', sep = "")
flush(stdout())

fit_starts <- function(x, y, hidden, seed, starts, maxit) {
    set.seed(seed)
    lapply(seq_len(starts), function(i)
        nnet(x, y, size = hidden, linout = TRUE, maxit = maxit, trace = FALSE))
}

input <- file("stdin", "r")
repeat {
    line <- readLines(input, n = 1L)
    if (length(line) == 0L || !nzchar(trimws(line))) break
    req <- strsplit(trimws(line), "[[:space:]]+")[[1L]]
    name <- req[[1L]]
    hidden <- as.integer(req[[2L]]); seed <- as.integer(req[[3L]])
    starts <- as.integer(req[[4L]]); maxit <- as.integer(req[[5L]])
    min_secs <- as.numeric(req[[6L]])
    d <- read.csv(file.path(dir, paste0(name, ".csv")))
    x <- as.matrix(d[, grep("^x", names(d)), drop = FALSE])
    y <- d$y

    batches <- 0L
    t0 <- proc.time()[["elapsed"]]
    repeat {
        fits <- fit_starts(x, y, hidden, seed, starts, maxit)
        batches <- batches + 1L
        elapsed <- proc.time()[["elapsed"]] - t0
        if (elapsed >= min_secs) break
    }
    rmse <- vapply(fits, function(f) sqrt(mean((f$fitted.values - y)^2)), numeric(1))
    sse <- vapply(fits, function(f) f$value, numeric(1))
    cat(sprintf('{"name": "%s", "rmse": [%s], "sse": [%s], "seconds_per_fit": %s, "batches": %d}\n',
                name, num(rmse), num(sse), num(elapsed / (batches * starts)), batches))
    flush(stdout())
}
