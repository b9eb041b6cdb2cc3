/* netCDF-C (Debian's libnetcdf 4.9 on HDF5 1.10) writes a netCDF-4 variable through the
 * deepcq plugin with nc_def_var_filter, as a climate model's output layer would: the
 * filter id and the same cd_values words h5repack takes. The variable has a _FillValue
 * (1e20, as CF files use) that marks land: an eighth of the grid. Reads it back through
 * netCDF-C and checks, on every chunk, PSNR >= target over the values that are not the
 * fill value and that the fill values came back exactly; that netCDF reports the filter
 * on the variable, that the coordinate variable is exact and the file is smaller than a
 * third of the data. Prints "ALL OK" and exits 0 on success.
 *
 * usage: netcdf_write FILE TARGET_DB */
#include <math.h>
#include <netcdf.h>
#include <netcdf_filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "chunk_psnr.h"

#define FILTER_DEEPCQ 357
#define NT 12
#define NLAT 90
#define NLON 144
static const size_t sizes[3] = {NT, NLAT, NLON};
static const size_t chunk[3] = {4, 45, 72};
static const float fill = 1e20f;

#define CHECK(call)                                                                 \
    do {                                                                            \
        int status_ = (call);                                                       \
        if (status_ != NC_NOERR) {                                                  \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call,            \
                    nc_strerror(status_));                                          \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE TARGET_DB\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    unsigned target = (unsigned)atoi(argv[2]);
    const size_t total = (size_t)NT * NLAT * NLON;
    float *original = malloc(total * sizeof(float)), *back = malloc(total * sizeof(float));
    double lat[NLAT], lat_back[NLAT];
    for (size_t y = 0; y < NLAT; y++) lat[y] = -89.0 + 2.0 * y;
    /* A surface temperature-like field: a latitude profile, waves that travel in time. */
    for (size_t t = 0; t < NT; t++)
        for (size_t y = 0; y < NLAT; y++)
            for (size_t x = 0; x < NLON; x++)
                original[(t * NLAT + y) * NLON + x] =
                    /* land: a continent of an eighth of the grid, missing in the ocean field */
                    (x > 20 && x < 70 && y > 25 && y < 60)
                        ? fill
                        : (float)(288.0 - 30.0 * sin(lat[y] * M_PI / 180.0) * sin(lat[y] * M_PI / 180.0) +
                                  4.0 * sin(2.5 * M_PI * x / NLON + 0.3 * t) * cos(3.0 * M_PI * y / NLAT));

    int ncid, dims[3], lat_var, var;
    CHECK(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &ncid));
    CHECK(nc_def_dim(ncid, "time", NT, &dims[0]));
    CHECK(nc_def_dim(ncid, "lat", NLAT, &dims[1]));
    CHECK(nc_def_dim(ncid, "lon", NLON, &dims[2]));
    CHECK(nc_def_var(ncid, "lat", NC_DOUBLE, 1, &dims[1], &lat_var));
    CHECK(nc_def_var(ncid, "ts", NC_FLOAT, 3, dims, &var));
    CHECK(nc_put_att_text(ncid, var, "units", 1, "K"));
    CHECK(nc_def_var_chunking(ncid, var, NC_CHUNKED, chunk));
    CHECK(nc_def_var_fill(ncid, var, NC_FILL, &fill)); /* _FillValue = 1e20 */
    const unsigned cd[1] = {target}; /* PSNR >= target dB, guarantee mode */
    CHECK(nc_def_var_filter(ncid, var, FILTER_DEEPCQ, 1, cd));
    CHECK(nc_enddef(ncid));
    CHECK(nc_put_var_double(ncid, lat_var, lat));
    CHECK(nc_put_var_float(ncid, var, original));
    CHECK(nc_close(ncid));

    int failures = 0;
    CHECK(nc_open(path, NC_NOWRITE, &ncid));
    CHECK(nc_inq_varid(ncid, "ts", &var));
    CHECK(nc_inq_varid(ncid, "lat", &lat_var));
    size_t n_filters = 0;
    unsigned ids[8];
    CHECK(nc_inq_var_filter_ids(ncid, var, &n_filters, NULL));
    if (n_filters >= 1 && n_filters <= 8) CHECK(nc_inq_var_filter_ids(ncid, var, &n_filters, ids));
    printf("filters on ts: %zu (first id %u)\n", n_filters, n_filters ? ids[0] : 0);
    if (n_filters != 1 || ids[0] != FILTER_DEEPCQ) failures++;
    CHECK(nc_get_var_float(ncid, var, back));
    CHECK(nc_get_var_double(ncid, lat_var, lat_back));
    CHECK(nc_close(ncid));
    for (size_t y = 0; y < NLAT; y++)
        if (lat_back[y] != lat[y]) {
            printf("lat changed at %zu\n", y);
            failures++;
            break;
        }
    double worst = INFINITY;
    for (size_t t = 0; t < NT; t += chunk[0])
        for (size_t y = 0; y < NLAT; y += chunk[1])
            for (size_t x = 0; x < NLON; x += chunk[2]) {
                double p = chunk_psnr_missing(original, back, sizes, chunk, t, y, x, 1, fill);
                if (!(p >= worst)) worst = p;
            }
    struct stat st;
    stat(path, &st);
    printf("ts: worst chunk PSNR %.2f dB over the values that are not _FillValue (target %u), "
           "file %lld B for %zu B of data\n", worst,
           target, (long long)st.st_size, total * sizeof(float));
    if (!(worst >= target)) failures++;
    if ((size_t)st.st_size * 3 > total * sizeof(float)) failures++;
    free(original);
    free(back);
    printf(failures == 0 ? "ALL OK\n" : "%d FAILURES\n", failures);
    return failures == 0 ? 0 : 1;
}
