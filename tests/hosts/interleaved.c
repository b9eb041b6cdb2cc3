/* Two variables of one shape and one filter setting written a slab at a time, in turn or
 * one after the other, through the system libhdf5 (Debian's 1.10) and the deepcq plugin:
 * the C twin of interleaved.py, which runs on h5py's bundled HDF5. The Rust test
 * (tests/h5_hosts.rs) traces each run (H5Z_DEEPCQ_TRACE) and checks that each variable's
 * chunks are compressed alike whether written in turn or alone: what guarantee and fast
 * mode learn is kept per open dataset (src/h5/filter.rs, encode_dataset_chunk).
 *
 * usage: interleaved FILE TARGET_DB MODE ORDER NAME...   (ORDER: turn | alone;
 * NAME: temperature | pressure). Reads every slab back, checks PSNR >= TARGET_DB on each
 * and prints "ALL OK". */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_psnr.h"

#define FILTER_DEEPCQ 357
#define STEPS 12
#define N 64

/* One step of a variable: a smooth temperature-like field, or a pressure-like one with a
 * deterministic pseudo-random texture. */
static void field(const char *name, int step, float *out) {
    unsigned state = 11u + (unsigned)step * 7919u;
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++) {
            double fx = 5.0 * x / (N - 1), fy = 5.0 * y / (N - 1);
            double v;
            if (strcmp(name, "temperature") == 0) {
                v = 280 + 20 * sin(fx + 0.2 * step) * cos(0.7 * fy);
            } else {
                state = state * 1664525u + 1013904223u;
                double noise = (double)(state >> 8) / (double)(1u << 24) - 0.5;
                v = 1e5 + 300 * cos(2 * fx * fy + 0.3 * step) + 60 * noise;
            }
            out[y * N + x] = (float)v;
        }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s FILE TARGET_DB MODE turn|alone NAME...\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    unsigned cd[5] = {(unsigned)atoi(argv[2]), 0, 0, 0, (unsigned)atoi(argv[3])};
    int turn = strcmp(argv[4], "turn") == 0;
    int vars = argc - 5;
    char **names = argv + 5;
    const hsize_t dims[3] = {STEPS, N, N}, chunk[3] = {1, N, N}, slab[3] = {1, N, N};
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    H5Pset_filter(dcpl, FILTER_DEEPCQ, H5Z_FLAG_MANDATORY, 5, cd);
    /* No chunk cache: every slab is compressed as it is written, in the order written. */
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 0, 0, 1.0);
    hid_t sets[8];
    if (file < 0 || vars > 8) return 1;
    for (int v = 0; v < vars; v++) {
        sets[v] = H5Dcreate2(file, names[v], H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, dapl);
        if (sets[v] < 0) return 1;
    }
    float buf[N * N], back[N * N];
    hid_t mem = H5Screate_simple(3, slab, NULL);
    for (int k = 0; k < STEPS * vars; k++) {
        int step = turn ? k / vars : k % STEPS, v = turn ? k % vars : k / STEPS;
        hsize_t start[3] = {(hsize_t)step, 0, 0};
        hid_t file_space = H5Dget_space(sets[v]);
        H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, slab, NULL);
        field(names[v], step, buf);
        if (H5Dwrite(sets[v], H5T_NATIVE_FLOAT, mem, file_space, H5P_DEFAULT, buf) < 0) return 1;
        H5Sclose(file_space);
    }
    const size_t plane[3] = {1, N, N};
    for (int v = 0; v < vars; v++)
        for (int step = 0; step < STEPS; step++) {
            hsize_t start[3] = {(hsize_t)step, 0, 0};
            hid_t file_space = H5Dget_space(sets[v]);
            H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, slab, NULL);
            if (H5Dread(sets[v], H5T_NATIVE_FLOAT, mem, file_space, H5P_DEFAULT, back) < 0)
                return 1;
            H5Sclose(file_space);
            field(names[v], step, buf);
            double psnr = chunk_psnr(buf, back, plane, plane, 0, 0, 0);
            if (!(psnr >= atof(argv[2]))) {
                fprintf(stderr, "%s step %d: %.3f dB for %s\n", names[v], step, psnr, argv[2]);
                return 1;
            }
        }
    for (int v = 0; v < vars; v++) H5Dclose(sets[v]);
    H5Sclose(mem);
    H5Pclose(dapl);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    printf("ALL OK\n");
    return 0;
}
