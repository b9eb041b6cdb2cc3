/*
 * write_c.c: write a 3-D float dataset through the deepcq HDF5 filter (id 357) with a
 * PSNR >= 60 dB target, read it back, and verify every chunk.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   gcc examples/write_c.c -Iinclude $(pkg-config --cflags --libs hdf5-serial) \
 *       -Ltarget/release -lh5z_deepcq -Wl,-rpath,$PWD/target/release -lm -o write_c
 * Run, either through the plugin folder or by registering the filter from the program
 * (the program loads the library from target/release, where no onnxruntime lies, so it
 * is named; docs/insitu.md):
 *   export ORT_DYLIB_PATH=$PWD/third_party/onnxruntime/libonnxruntime.so
 *   HDF5_PLUGIN_PATH=$PWD/plugin ./write_c out.h5
 *   ./write_c out.h5 --register
 *
 * Output: one line per chunk ("chunk ... met yes"), then a RESULT line that
 * tests/examples.rs checks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "h5z_deepcq.h"

#define NZ 40
#define NY 50
#define NX 60
#define CZ 16
#define CY 32
#define CX 32
#define TARGET_DB 60.0

static void die(const char *what) {
  char msg[512];
  h5z_deepcq_last_error(msg, sizeof msg);
  fprintf(stderr, "write_c: %s failed%s%s\n", what, msg[0] ? ": " : "", msg);
  exit(1);
}

#define CHECK_H5(call)   \
  do {                   \
    if ((call) < 0)      \
      die(#call);        \
  } while (0)

/* A smooth field with some fine structure, so the codecs have real work. */
static float field(int z, int y, int x) {
  double fz = z / (double)NZ, fy = y / (double)NY, fx = x / (double)NX;
  return (float)(sin(6.0 * fx + 2.0 * fz) * cos(5.0 * fy - fz) + 0.3 * sin(40.0 * fx * fy) +
                 0.05 * cos(90.0 * fz + 31.0 * fx));
}

/* PSNR (SZ convention) of the block [z0,z1)x[y0,y1)x[x0,x1) using the block's own range. */
static double block_psnr(const float *a, const float *b, int z0, int z1, int y0, int y1,
                         int x0, int x1) {
  double lo = INFINITY, hi = -INFINITY, sum = 0.0;
  long n = 0;
  for (int z = z0; z < z1; z++)
    for (int y = y0; y < y1; y++)
      for (int x = x0; x < x1; x++) {
        long i = ((long)z * NY + y) * NX + x;
        double d = (double)a[i] - (double)b[i];
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
        sum += d * d;
        n++;
      }
  if (sum == 0.0) return INFINITY;
  return 20.0 * log10(hi - lo) - 10.0 * log10(sum / n);
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "write_c.h5";
  int do_register = argc > 2 && strcmp(argv[2], "--register") == 0;
  size_t count = (size_t)NZ * NY * NX;
  float *data = malloc(count * sizeof *data), *back = malloc(count * sizeof *back);
  if (!data || !back) die("malloc");
  for (int z = 0; z < NZ; z++)
    for (int y = 0; y < NY; y++)
      for (int x = 0; x < NX; x++) data[((size_t)z * NY + y) * NX + x] = field(z, y, x);

  printf("h5z-deepcq %s, filter id %u\n", h5z_deepcq_version(), h5z_deepcq_filter_id());
  if (do_register && h5z_deepcq_register() != H5Z_DEEPCQ_OK) die("h5z_deepcq_register");

  /* Settings: PSNR >= 60 dB, automatic compressor, guarantee mode. */
  unsigned cd[H5Z_DEEPCQ_CD_MAX];
  size_t ncd = H5Z_DEEPCQ_CD_MAX;
  if (h5z_deepcq_cd_values(H5Z_DEEPCQ_PSNR, TARGET_DB, H5Z_DEEPCQ_AUTO, H5Z_DEEPCQ_GUARANTEE,
                           0, cd, &ncd) != H5Z_DEEPCQ_OK)
    die("h5z_deepcq_cd_values");
  printf("cd_values:");
  for (size_t i = 0; i < ncd; i++) printf(" %u", cd[i]);
  printf("\n");

  /* Advice: what the chooser would do with the first chunk (predict-only). */
  {
    size_t cdims[3] = {CZ, CY, CX};
    float *first = malloc((size_t)CZ * CY * CX * sizeof *first);
    if (!first) die("malloc");
    for (int z = 0; z < CZ; z++)
      for (int y = 0; y < CY; y++)
        memcpy(first + ((size_t)z * CY + y) * CX, data + ((size_t)z * NY + y) * NX,
               CX * sizeof *first);
    h5z_deepcq_advice adv;
    if (h5z_deepcq_advise(first, H5Z_DEEPCQ_FLOAT32, cdims, 3, cd, ncd, &adv) != H5Z_DEEPCQ_OK)
      die("h5z_deepcq_advise");
    printf("advice for chunk 0: codec %u bound %.3e psnr %.2f ssim %.5f ratio %.2f (%s)\n",
           adv.codec, adv.bound, adv.psnr, adv.ssim, adv.ratio,
           adv.source == H5Z_DEEPCQ_SOURCE_MEASURED ? "measured" : "model");
    free(first);
  }

  if (H5Zfilter_avail(H5Z_DEEPCQ_FILTER_ID) <= 0) {
    fprintf(stderr, "write_c: filter %u is not available: set HDF5_PLUGIN_PATH to the plugin/ "
                    "folder or pass --register\n", H5Z_DEEPCQ_FILTER_ID);
    return 1;
  }

  hsize_t dims[3] = {NZ, NY, NX}, chunk[3] = {CZ, CY, CX};
  hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(3, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (file < 0 || space < 0 || dcpl < 0) die("HDF5 create");
  CHECK_H5(H5Pset_chunk(dcpl, 3, chunk));
  CHECK_H5(H5Pset_filter(dcpl, H5Z_DEEPCQ_FILTER_ID, H5Z_FLAG_MANDATORY, ncd, cd));
  hid_t dset = H5Dcreate2(file, "field", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0) die("H5Dcreate2");
  CHECK_H5(H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  CHECK_H5(H5Dclose(dset));
  CHECK_H5(H5Pclose(dcpl));
  CHECK_H5(H5Sclose(space));
  CHECK_H5(H5Fclose(file));

  /* Read back through the filter. */
  file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) die("H5Fopen");
  dset = H5Dopen2(file, "field", H5P_DEFAULT);
  if (dset < 0) die("H5Dopen2");
  CHECK_H5(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back));
  hsize_t stored = H5Dget_storage_size(dset);

  /* Every chunk: the raw stored bytes are a deepcq chunk, and its valid block meets the
   * target with the chunk's own value range (which is what the filter guarantees). */
  int chunks = 0, met = 0, raw_ok = 0;
  for (int z0 = 0; z0 < NZ; z0 += CZ)
    for (int y0 = 0; y0 < NY; y0 += CY)
      for (int x0 = 0; x0 < NX; x0 += CX) {
        int z1 = z0 + CZ < NZ ? z0 + CZ : NZ, y1 = y0 + CY < NY ? y0 + CY : NY,
            x1 = x0 + CX < NX ? x0 + CX : NX;
        double psnr = block_psnr(data, back, z0, z1, y0, y1, x0, x1);
        hsize_t offset[3] = {(hsize_t)z0, (hsize_t)y0, (hsize_t)x0};
        hsize_t nbytes = 0;
        uint32_t mask = 0;
        unsigned char *raw = NULL;
        unsigned dtype = 0;
        size_t cdims[8], rank = 8, decoded = 0;
        CHECK_H5(H5Dget_chunk_storage_size(dset, offset, &nbytes));
        raw = malloc(nbytes);
        if (!raw) die("malloc");
        CHECK_H5(H5Dread_chunk(dset, H5P_DEFAULT, offset, &mask, raw));
        int is_deepcq = mask == 0 &&
                        h5z_deepcq_chunk_info(raw, nbytes, &dtype, cdims, &rank, &decoded) ==
                            H5Z_DEEPCQ_OK &&
                        dtype == H5Z_DEEPCQ_FLOAT32 && rank == 3 && cdims[0] == CZ &&
                        decoded == (size_t)CZ * CY * CX * sizeof(float);
        free(raw);
        int ok = psnr >= TARGET_DB;
        printf("chunk %d [%d,%d,%d]: %llu bytes, deepcq chunk %s, psnr %.2f dB, met %s\n", chunks,
               z0, y0, x0, (unsigned long long)nbytes, is_deepcq ? "yes" : "no", psnr,
               ok ? "yes" : "no");
        chunks++;
        met += ok;
        raw_ok += is_deepcq;
      }
  CHECK_H5(H5Dclose(dset));
  CHECK_H5(H5Fclose(file));

  double whole = block_psnr(data, back, 0, NZ, 0, NY, 0, NX);
  size_t raw_bytes = count * sizeof(float);
  printf("RESULT chunks=%d met=%d deepcq_chunks=%d psnr=%.2f stored=%llu raw=%zu ratio=%.2f\n",
         chunks, met, raw_ok, whole, (unsigned long long)stored, raw_bytes,
         (double)raw_bytes / (double)stored);
  free(data);
  free(back);
  return met == chunks && raw_ok == chunks && stored < raw_bytes ? 0 : 2;
}
