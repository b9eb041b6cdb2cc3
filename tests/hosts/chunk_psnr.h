/* PSNR of one chunk of a C-order 3-D float array, shared by the C host programs: the
 * chunk at (z0, y0, x0) of size `chunk`, cut to the array's `dims` (edge chunks are
 * measured on their valid part), with the original chunk's value range as peak. +inf
 * when the chunk came back exact; -inf when a value came back NaN or infinite where the
 * original was finite (a NaN result would pass every `p < worst` test). */
#ifndef DEEPCQ_TEST_CHUNK_PSNR_H
#define DEEPCQ_TEST_CHUNK_PSNR_H
#include <math.h>
#include <stddef.h>
#include <string.h>

/* chunk_psnr, leaving out the values that equal `fill` in the original (missing data)
 * when `has_fill`: those must come back as exactly `fill`, else the result is -inf. */
static inline double chunk_psnr_missing(const float *original, const float *back,
                                        const size_t dims[3], const size_t chunk[3], size_t z0,
                                        size_t y0, size_t x0, int has_fill, float fill) {
    double lo = INFINITY, hi = -INFINITY, se = 0;
    size_t n = 0;
    for (size_t z = z0; z < z0 + chunk[0] && z < dims[0]; z++)
        for (size_t y = y0; y < y0 + chunk[1] && y < dims[1]; y++)
            for (size_t x = x0; x < x0 + chunk[2] && x < dims[2]; x++) {
                size_t i = (z * dims[1] + y) * dims[2] + x;
                if (has_fill && memcmp(&original[i], &fill, sizeof fill) == 0) {
                    if (memcmp(&back[i], &fill, sizeof fill) != 0) return -INFINITY;
                    continue;
                }
                if (isfinite(original[i]) && !isfinite(back[i])) return -INFINITY;
                double d = (double)original[i] - (double)back[i];
                if (original[i] < lo) lo = original[i];
                if (original[i] > hi) hi = original[i];
                se += d * d;
                n++;
            }
    if (se == 0) return INFINITY;
    double psnr = 20 * log10(hi - lo) - 10 * log10(se / n);
    return isnan(psnr) ? -INFINITY : psnr;
}

static inline double chunk_psnr(const float *original, const float *back,
                                const size_t dims[3], const size_t chunk[3], size_t z0, size_t y0,
                                size_t x0) {
    return chunk_psnr_missing(original, back, dims, chunk, z0, y0, x0, 0, 0.0f);
}
#endif
