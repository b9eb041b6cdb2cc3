/* In-situ chunks written with H5Dwrite_chunk into datasets whose stored cd_values (read
 * back from the file) are the settings: a big-endian f32 dataset with a fill value
 * marking land, written step by step through h5z_deepcq_compress and a session, read
 * back through the filter by HDF5 (which converts big-endian to native). Every chunk must
 * meet 60 dB over its real values with the land exact. A buffer of the wrong type for
 * the stored form is refused with H5Z_DEEPCQ_ERR_INVALID_ARGUMENT: its chunk would not
 * read back. Prints "ALL OK" and exits 0 on success. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chunk_psnr.h"
#include "h5z_deepcq.h"

#define STEPS 4
#define NY 48
#define NX 40
#define LAND 1e20f
static const size_t dims[3] = {STEPS, NY, NX}, chunk[3] = {1, NY, NX};

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "insitu_stored.h5";
    const size_t n = (size_t)STEPS * NY * NX, step = (size_t)NY * NX;
    float *data = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
    if (!data || !back) return 2;
    for (size_t t = 0; t < STEPS; t++)
        for (size_t y = 0; y < NY; y++)
            for (size_t x = 0; x < NX; x++)
                data[t * step + y * NX + x] =
                    x + y < 20 ? LAND
                               : (float)(15.0 + 8.0 * sin(0.13 * x + 0.1 * t) * cos(0.09 * y) +
                                         0.01 * x * y);

    if (h5z_deepcq_register() != H5Z_DEEPCQ_OK) return 2;
    unsigned cd[H5Z_DEEPCQ_CD_MAX];
    size_t ncd = H5Z_DEEPCQ_CD_MAX;
    if (h5z_deepcq_cd_values(H5Z_DEEPCQ_PSNR, 60.0, H5Z_DEEPCQ_AUTO, H5Z_DEEPCQ_GUARANTEE, 0,
                             cd, &ncd) != H5Z_DEEPCQ_OK)
        return 3;
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t hdims[3] = {STEPS, NY, NX}, hchunk[3] = {1, NY, NX};
    hid_t space = H5Screate_simple(3, hdims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const float land = LAND;
    H5Pset_chunk(dcpl, 3, hchunk);
    H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &land);
    H5Pset_filter(dcpl, h5z_deepcq_filter_id(), H5Z_FLAG_MANDATORY, ncd, cd);
    hid_t ds = H5Dcreate2(file, "sst", H5T_IEEE_F32BE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0) return 4;

    /* The settings as the file holds them (set_local's stored form). */
    hid_t created = H5Dget_create_plist(ds);
    unsigned stored[32], flags;
    size_t nstored = 32;
    if (H5Pget_filter_by_id2(created, h5z_deepcq_filter_id(), &flags, &nstored, stored, 0, NULL,
                             NULL) < 0 ||
        nstored > 32)
        return 5;
    H5Pclose(created);

    int failures = 0;
    /* A double buffer for a float dataset: refused, nothing written. */
    double *wrong = calloc(step, sizeof(double));
    if (!wrong) return 2;
    void *out = NULL;
    size_t len = 0;
    int status = h5z_deepcq_compress(wrong, H5Z_DEEPCQ_FLOAT64, chunk, 3, stored, nstored, &out,
                                     &len, NULL);
    char message[512];
    h5z_deepcq_last_error(message, sizeof message);
    printf("f64 buffer with the f32 dataset's settings: status %d, %s\n", status, message);
    if (status != H5Z_DEEPCQ_ERR_INVALID_ARGUMENT || !strstr(message, "stored form")) {
        printf("FAIL f64 buffer accepted for an f32 dataset\n");
        failures++;
    }
    free(wrong);

    h5z_deepcq_session *session = NULL;
    if (h5z_deepcq_session_new(stored, nstored, 0, &session) != H5Z_DEEPCQ_OK) return 6;
    for (size_t t = 0; t < STEPS; t++) {
        h5z_deepcq_report report;
        /* Even steps through the one-shot call, odd steps through the session. */
        status = t % 2 == 0 ? h5z_deepcq_compress(data + t * step, H5Z_DEEPCQ_FLOAT32, chunk, 3,
                                                  stored, nstored, &out, &len, &report)
                            : h5z_deepcq_session_compress(session, data + t * step,
                                                          H5Z_DEEPCQ_FLOAT32, chunk, 3, &out,
                                                          &len, &report);
        if (status != H5Z_DEEPCQ_OK) {
            h5z_deepcq_last_error(message, sizeof message);
            printf("FAIL step %zu: %s\n", t, message);
            return 7;
        }
        hsize_t offset[3] = {t, 0, 0};
        if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, offset, len, out) < 0) return 8;
        printf("step %zu: %zu B, reported PSNR %.2f dB\n", t, len, report.psnr);
        h5z_deepcq_free(out);
    }
    h5z_deepcq_session_free(session);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ds = H5Dopen2(file, "sst", H5P_DEFAULT);
    if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0) return 9;
    H5Dclose(ds);
    H5Fclose(file);
    for (size_t t = 0; t < STEPS; t++) {
        double p = chunk_psnr_missing(data, back, dims, chunk, t, 0, 0, 1, LAND);
        printf("step %zu read back: %.2f dB over the sea, land exact: %s\n", t, p,
               p > -INFINITY ? "yes" : "no");
        if (!(p >= 60.0)) {
            printf("FAIL step %zu\n", t);
            failures++;
        }
    }
    free(data);
    free(back);
    if (failures == 0) printf("ALL OK\n");
    return failures ? 1 : 0;
}
