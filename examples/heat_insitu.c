/*
 * heat_insitu.c: a small 2-D reaction-diffusion (Gray-Scott) time loop that compresses
 * its V field every output step through an in-situ session and writes the chunk straight
 * into HDF5 (H5Dwrite_chunk), then reads the file back through the filter.
 *
 * Two sessions see the same steps: one learns across steps (the default), one does not
 * (H5Z_DEEPCQ_SESSION_NO_ADAPT). Per step it prints whether the target was met, the
 * compression ratio and the compressions spent by each, so the effect of the session's
 * correction is measured, not claimed.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   gcc examples/heat_insitu.c -Iinclude $(pkg-config --cflags --libs hdf5-serial) \
 *       -Ltarget/release -lh5z_deepcq -Wl,-rpath,$PWD/target/release -lm -o heat_insitu
 * Run (the program loads the library from target/release, where no onnxruntime lies, so
 * it is named; docs/insitu.md):
 *   export ORT_DYLIB_PATH=$PWD/third_party/onnxruntime/libonnxruntime.so
 *   ./heat_insitu out.h5 [steps] [target] [guarantee|predict] [auto|sz3|zfp|sperr] [psnr|ssim]
 * (target in dB for psnr, e.g. 60; an SSIM such as 0.9999 for ssim)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "h5z_deepcq.h"

#define N 128
#define SUBSTEPS 150

static void die(const char *what) {
  char msg[512];
  h5z_deepcq_last_error(msg, sizeof msg);
  fprintf(stderr, "heat_insitu: %s failed%s%s\n", what, msg[0] ? ": " : "", msg);
  exit(1);
}

#define CHECK_H5(call) \
  do {                 \
    if ((call) < 0)    \
      die(#call);      \
  } while (0)

/* Gray-Scott: u' = Du lap(u) - u v^2 + F (1-u), v' = Dv lap(v) + u v^2 - (F+k) v,
 * periodic boundaries, explicit Euler. */
static void simulate(float *u, float *v, float *u2, float *v2, int substeps) {
  const float du = 0.16f, dv = 0.08f, f = 0.035f, k = 0.060f;
  for (int s = 0; s < substeps; s++) {
    for (int y = 0; y < N; y++)
      for (int x = 0; x < N; x++) {
        int i = y * N + x, xm = y * N + (x + N - 1) % N, xp = y * N + (x + 1) % N,
            ym = ((y + N - 1) % N) * N + x, yp = ((y + 1) % N) * N + x;
        float lu = u[xm] + u[xp] + u[ym] + u[yp] - 4.0f * u[i];
        float lv = v[xm] + v[xp] + v[ym] + v[yp] - 4.0f * v[i];
        float uvv = u[i] * v[i] * v[i];
        u2[i] = u[i] + du * lu - uvv + f * (1.0f - u[i]);
        v2[i] = v[i] + dv * lv + uvv - (f + k) * v[i];
      }
    memcpy(u, u2, N * N * sizeof *u);
    memcpy(v, v2, N * N * sizeof *v);
  }
}

static double psnr(const float *a, const float *b, size_t n) {
  double lo = INFINITY, hi = -INFINITY, sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    if (a[i] < lo) lo = a[i];
    if (a[i] > hi) hi = a[i];
    sum += d * d;
  }
  return sum == 0.0 ? INFINITY : 20.0 * log10(hi - lo) - 10.0 * log10(sum / n);
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "heat_insitu.h5";
  int steps = argc > 2 ? atoi(argv[2]) : 30;
  double target = argc > 3 ? atof(argv[3]) : 60.0;
  int predict = argc > 4 && strcmp(argv[4], "predict") == 0;
  const char *names[] = {"auto", "sz3", "zfp", "sperr"};
  unsigned compressor = H5Z_DEEPCQ_AUTO;
  for (unsigned c = 0; argc > 5 && c < 4; c++)
    if (strcmp(argv[5], names[c]) == 0) compressor = c;
  int ssim = argc > 6 && strcmp(argv[6], "ssim") == 0;
  size_t n = (size_t)N * N, dims[2] = {N, N};
  float *u = malloc(n * sizeof *u), *v = malloc(n * sizeof *v), *u2 = malloc(n * sizeof *u2),
        *v2 = malloc(n * sizeof *v2), *kept = malloc((size_t)steps * n * sizeof *kept),
        *back = malloc((size_t)steps * n * sizeof *back);
  if (!u || !v || !u2 || !v2 || !kept || !back) die("malloc");
  /* U = 1 everywhere, V = 0 except a few seeded squares with a deterministic ripple. */
  for (size_t i = 0; i < n; i++) {
    u[i] = 1.0f;
    v[i] = 0.0f;
  }
  const int seeds[4][2] = {{40, 40}, {90, 60}, {60, 100}, {20, 100}};
  for (int s = 0; s < 4; s++)
    for (int y = -6; y <= 6; y++)
      for (int x = -6; x <= 6; x++) {
        int i = (seeds[s][1] + y) * N + seeds[s][0] + x;
        u[i] = 0.5f;
        v[i] = 0.25f + 0.01f * (float)sin(0.7 * x + 1.3 * y + s);
      }

  if (h5z_deepcq_register() != H5Z_DEEPCQ_OK) die("h5z_deepcq_register");
  unsigned cd[H5Z_DEEPCQ_CD_MAX];
  size_t ncd = H5Z_DEEPCQ_CD_MAX;
  if (h5z_deepcq_cd_values(ssim ? H5Z_DEEPCQ_SSIM : H5Z_DEEPCQ_PSNR, target, compressor,
                           predict ? H5Z_DEEPCQ_PREDICT : H5Z_DEEPCQ_GUARANTEE, 0, cd,
                           &ncd) != H5Z_DEEPCQ_OK)
    die("h5z_deepcq_cd_values");
  h5z_deepcq_session *adaptive = NULL, *fixed = NULL;
  if (h5z_deepcq_session_new(cd, ncd, 0, &adaptive) != H5Z_DEEPCQ_OK) die("session_new");
  if (h5z_deepcq_session_new(cd, ncd, H5Z_DEEPCQ_SESSION_NO_ADAPT, &fixed) != H5Z_DEEPCQ_OK)
    die("session_new");

  /* One dataset of [steps][N][N], one chunk per step, same filter settings. */
  hsize_t fdims[3] = {(hsize_t)steps, N, N}, chunk[3] = {1, N, N};
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(3, fdims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (file < 0 || space < 0 || dcpl < 0) die("HDF5 create");
  CHECK_H5(H5Pset_chunk(dcpl, 3, chunk));
  CHECK_H5(H5Pset_filter(dcpl, H5Z_DEEPCQ_FILTER_ID, H5Z_FLAG_MANDATORY, ncd, cd));
  hid_t dset = H5Dcreate2(file, "v", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0) die("H5Dcreate2");

  printf("Gray-Scott %dx%d, %d steps, %s >= %g, %s mode, compressor %s\n", N, N, steps,
         ssim ? "SSIM" : "PSNR", target, predict ? "predict" : "guarantee", names[compressor]);
  printf("step | adaptive: met  CR      compressions correction | fixed: met  CR      "
         "compressions\n");
  int all_met = 1;
  double log_cr_a = 0.0, log_cr_f = 0.0;
  for (int t = 0; t < steps; t++) {
    simulate(u, v, u2, v2, SUBSTEPS);
    memcpy(kept + (size_t)t * n, v, n * sizeof *v);
    void *buf = NULL;
    size_t len = 0;
    h5z_deepcq_report ra, rf;
    if (h5z_deepcq_session_compress(adaptive, v, H5Z_DEEPCQ_FLOAT32, dims, 2, &buf, &len, &ra) !=
        H5Z_DEEPCQ_OK)
      die("session_compress (adaptive)");
    hsize_t offset[3] = {(hsize_t)t, 0, 0};
    CHECK_H5(H5Dwrite_chunk(dset, H5P_DEFAULT, 0, offset, len, buf));
    h5z_deepcq_free(buf);
    if (h5z_deepcq_session_compress(fixed, v, H5Z_DEEPCQ_FLOAT32, dims, 2, &buf, &len, &rf) !=
        H5Z_DEEPCQ_OK)
      die("session_compress (fixed)");
    h5z_deepcq_free(buf);
    printf("%4d | met %-3s CR %7.2f compressions %u correction %+.3f | met %-3s CR %7.2f "
           "compressions %u\n",
           t, ra.target_met ? "yes" : "no", ra.ratio, ra.compressions, ra.correction,
           rf.target_met ? "yes" : "no", rf.ratio, rf.compressions);
    all_met &= ra.target_met && rf.target_met;
    log_cr_a += log(ra.ratio);
    log_cr_f += log(rf.ratio);
  }
  CHECK_H5(H5Dclose(dset));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(space));
  CHECK_H5(H5Fclose(file));

  h5z_deepcq_session_stats_t sa, sf;
  if (h5z_deepcq_session_stats(adaptive, &sa) != H5Z_DEEPCQ_OK ||
      h5z_deepcq_session_stats(fixed, &sf) != H5Z_DEEPCQ_OK)
    die("session_stats");
  h5z_deepcq_session_free(adaptive);
  h5z_deepcq_session_free(fixed);

  /* Read the file back through the filter: every step must meet the target. */
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) die("H5Fopen");
  dset = H5Dopen2(file, "v", H5P_DEFAULT);
  if (dset < 0) die("H5Dopen2");
  CHECK_H5(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back));
  int readback_met = 0;
  double min_psnr = INFINITY;
  for (int t = 0; t < steps; t++) {
    double p = psnr(kept + (size_t)t * n, back + (size_t)t * n, n);
    readback_met += ssim ? p > 0.0 : p >= target; /* SSIM is verified by the sessions */
    if (p < min_psnr) min_psnr = p;
  }
  CHECK_H5(H5Dclose(dset));
  CHECK_H5(H5Fclose(file));

  printf("TOTAL adaptive: steps=%llu compressions=%llu misses=%llu gmean_cr=%.2f\n",
         (unsigned long long)sa.steps, (unsigned long long)sa.compressions,
         (unsigned long long)sa.misses, exp(log_cr_a / steps));
  printf("TOTAL fixed: steps=%llu compressions=%llu misses=%llu gmean_cr=%.2f\n",
         (unsigned long long)sf.steps, (unsigned long long)sf.compressions,
         (unsigned long long)sf.misses, exp(log_cr_f / steps));
  printf("READBACK steps=%d met=%d min_psnr=%.2f\n", steps, readback_met, min_psnr);
  free(u), free(v), free(u2), free(v2), free(kept), free(back);
  return all_met && readback_met == steps ? 0 : 2;
}
