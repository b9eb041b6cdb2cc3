/* A C program built against the system libhdf5 (Debian's 1.10) that writes a chunked 3-D
 * float dataset through the deepcq plugin (found via HDF5_PLUGIN_PATH), reads it back and
 * checks PSNR >= target on every chunk (edge chunks measured on their valid part), that the
 * stored size is smaller than raw, and that bad cd_values fail H5Dcreate with deepcq's
 * message on the HDF5 error stack. Prints "ALL OK" and exits 0 on success. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_psnr.h"

#define FILTER_DEEPCQ 357
#define NZ 40
#define NY 50
#define NX 60
static const hsize_t dims[3] = {NZ, NY, NX};
static const hsize_t chunk[3] = {16, 16, 32};
static const size_t sizes[3] = {NZ, NY, NX}, chunk_sizes[3] = {16, 16, 32};

static int count_error(unsigned n, const H5E_error2_t *e, void *found) {
    (void)n;
    if (e->desc && strstr(e->desc, "deepcq")) {
        fprintf(stderr, "error stack: %s\n", e->desc);
        *(int *)found = 1;
    }
    return 0;
}

/* Tries to create a dataset with bad cd_values, or deepcq added `times` times; returns 1
 * if creation failed with a deepcq message on the error stack. */
static int rejects(hid_t file, const char *name, size_t n, const unsigned *cd, int times) {
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    for (int i = 0; i < times; i++) H5Pset_filter(dcpl, FILTER_DEEPCQ, H5Z_FLAG_MANDATORY, n, cd);
    H5E_auto2_t old;
    void *old_data;
    H5Eget_auto2(H5E_DEFAULT, &old, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t ds = H5Dcreate2(file, name, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int found = 0;
    if (ds < 0) H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, count_error, &found);
    H5Eclear2(H5E_DEFAULT);
    H5Eset_auto2(H5E_DEFAULT, old, old_data);
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    return ds < 0 && found;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "c_written.h5";
    const double target = 60.0;
    size_t n = (size_t)NZ * NY * NX;
    float *data = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    for (size_t z = 0; z < NZ; z++)
        for (size_t y = 0; y < NY; y++)
            for (size_t x = 0; x < NX; x++)
                data[(z * NY + y) * NX + x] =
                    (float)(sin(0.1 * x) * cos(0.13 * y) + 0.5 * sin(0.07 * z + 0.05 * x) + 300.0);

    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 3, chunk);
    const unsigned cd[1] = {60}; /* PSNR >= 60 dB, automatic compressor, guarantee mode */
    if (H5Pset_filter(dcpl, FILTER_DEEPCQ, H5Z_FLAG_MANDATORY, 1, cd) < 0) return 2;
    if (H5Zfilter_avail(FILTER_DEEPCQ) <= 0) {
        fprintf(stderr, "deepcq filter not available: check HDF5_PLUGIN_PATH\n");
        return 3;
    }
    hid_t ds = H5Dcreate2(file, "field", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) return 4;
    hsize_t stored = H5Dget_storage_size(ds);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);

    int failures = 0;
    const unsigned bad_kind[2] = {60, 9}, negative[1] = {(unsigned)-5}, too_many[7] = {60, 0, 0, 0, 0, 0, 0};
    const struct { const char *name; size_t n; const unsigned *cd; int times; const char *what; }
        refused[] = {{"bad_kind", 2, bad_kind, 1, "bad kind"},
                     {"negative", 1, negative, 1, "negative target"},
                     {"too_many", 7, too_many, 1, "7 cd_values"},
                     {"twice", 1, cd, 2, "deepcq twice"}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (!rejects(file, refused[i].name, refused[i].n, refused[i].cd, refused[i].times)) {
            printf("FAIL %s accepted\n", refused[i].what);
            failures++;
        }
    H5Fclose(file);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ds = H5Dopen2(file, "field", H5P_DEFAULT);
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0) return 5;
    H5Dclose(ds);
    H5Fclose(file);

    double worst = INFINITY;
    for (hsize_t z = 0; z < NZ; z += chunk[0])
        for (hsize_t y = 0; y < NY; y += chunk[1])
            for (hsize_t x = 0; x < NX; x += chunk[2]) {
                double p = chunk_psnr(data, back, sizes, chunk_sizes, z, y, x);
                if (!(p >= worst)) worst = p;
            }
    printf("worst chunk PSNR %.2f dB (target %.1f), stored %llu of %zu bytes\n", worst, target,
           (unsigned long long)stored, n * sizeof(float));
    if (!(worst >= target)) { printf("FAIL target missed\n"); failures++; }
    if (stored == 0 || stored >= n * sizeof(float)) { printf("FAIL not compressed\n"); failures++; }
    free(data);
    free(back);
    if (failures == 0) printf("ALL OK\n");
    return failures ? 1 : 0;
}
