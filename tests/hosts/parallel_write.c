/* Parallel HDF5 (Debian's libhdf5-openmpi, 1.10) writes one chunked 3-D float dataset
 * through the deepcq plugin from every MPI rank with collective I/O, each rank its own
 * slab of the z axis, the way a simulation writes a checkpoint. HDF5 filters a chunk on
 * the rank that owns it (1.10.2 and later), so every rank loads the plugin, the model and
 * onnxruntime. Then every rank reads the whole dataset back (independent I/O) and checks
 * PSNR >= target on every chunk of its slab; rank 0 checks that the filter is in the
 * pipeline and that the dataset stores less than a third of its raw size.
 * Prints "ALL OK" on rank 0 and exits 0 when every rank passed.
 *
 * usage: mpirun -np N parallel_write FILE TARGET_DB */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "chunk_psnr.h"

#define FILTER_DEEPCQ 357
#define NY 48
#define NX 70
#define Z_PER_RANK 16
/* 12 does not divide a rank's 16 z planes: chunks straddle ranks, so HDF5 gathers each
 * one on the rank that filters it. */
static const size_t chunk[3] = {12, 24, 32};

static double field(hsize_t z, hsize_t y, hsize_t x) {
    return sin(0.11 * x + 0.05 * z) * cos(0.07 * y) + 0.3 * sin(0.02 * (x + 2 * y) * (z + 1));
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc != 3) {
        if (rank == 0) fprintf(stderr, "usage: %s FILE TARGET_DB\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    const char *path = argv[1];
    unsigned target = (unsigned)atoi(argv[2]);
    if (H5Zfilter_avail(FILTER_DEEPCQ) <= 0) {
        fprintf(stderr, "rank %d: deepcq filter not available (HDF5_PLUGIN_PATH?)\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    const hsize_t nz = (hsize_t)size * Z_PER_RANK;
    const hsize_t dims[3] = {nz, NY, NX};
    const size_t total = (size_t)nz * NY * NX;
    float *original = malloc(total * sizeof(float));
    float *back = malloc(total * sizeof(float));
    for (hsize_t z = 0; z < nz; z++)
        for (hsize_t y = 0; y < NY; y++)
            for (hsize_t x = 0; x < NX; x++) original[(z * NY + y) * NX + x] = (float)field(z, y, x);

    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    hid_t space = H5Screate_simple(3, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const hsize_t chunk_dims[3] = {chunk[0], chunk[1], chunk[2]};
    H5Pset_chunk(dcpl, 3, chunk_dims);
    const unsigned cd[1] = {target}; /* PSNR >= target dB, guarantee mode */
    H5Pset_filter(dcpl, FILTER_DEEPCQ, H5Z_FLAG_MANDATORY, 1, cd);
    hid_t ds = H5Dcreate2(file, "t", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0) {
        fprintf(stderr, "rank %d: H5Dcreate2 failed\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* Each rank writes its slab of z; collective I/O, as parallel filtered writes need. */
    const hsize_t start[3] = {(hsize_t)rank * Z_PER_RANK, 0, 0};
    const hsize_t count[3] = {Z_PER_RANK, NY, NX};
    hid_t file_space = H5Dget_space(ds);
    H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, count, NULL);
    hid_t mem_space = H5Screate_simple(3, count, NULL);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    herr_t written = H5Dwrite(ds, H5T_NATIVE_FLOAT, mem_space, file_space, dxpl,
                              original + (size_t)rank * Z_PER_RANK * NY * NX);
    int failures = 0;
    if (written < 0) {
        fprintf(stderr, "rank %d: collective H5Dwrite failed\n", rank);
        failures++;
    }
    H5Pclose(dxpl);
    H5Sclose(mem_space);
    H5Sclose(file_space);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);

    /* Read back in parallel, every rank the whole dataset, and check its own slab. */
    file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    ds = H5Dopen2(file, "t", H5P_DEFAULT);
    if (ds < 0 || H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0) {
        fprintf(stderr, "rank %d: reading back failed\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* This rank checks the chunks that start in its slab. */
    double worst = INFINITY;
    int checked = 0;
    hsize_t first = (start[0] + chunk[0] - 1) / chunk[0] * chunk[0];
    for (hsize_t z = first; z < start[0] + Z_PER_RANK; z += chunk[0])
        for (hsize_t y = 0; y < NY; y += chunk[1])
            for (hsize_t x = 0; x < NX; x += chunk[2]) {
                double p = chunk_psnr(original, back, (size_t[3]){nz, NY, NX}, chunk, z, y, x);
                if (!(p >= worst)) worst = p;
                checked++;
            }
    printf("rank %d of %d: worst chunk PSNR %.2f dB (target %u) over %d chunks\n", rank, size,
           worst, target, checked);
    if (!(worst >= target) || checked == 0) failures++;
    if (rank == 0) {
        hid_t dcpl_read = H5Dget_create_plist(ds);
        unsigned flags, filter_config;
        size_t n_cd = 0;
        char name[256];
        int n_filters = H5Pget_nfilters(dcpl_read);
        H5Z_filter_t id = n_filters == 1 ? H5Pget_filter2(dcpl_read, 0, &flags, &n_cd, NULL,
                                                          sizeof name, name, &filter_config)
                                         : -1;
        hsize_t stored = H5Dget_storage_size(ds);
        printf("filters %d (id %d, \"%s\"), stored %llu of %zu bytes\n", n_filters, (int)id,
               id == FILTER_DEEPCQ ? name : "", (unsigned long long)stored,
               total * sizeof(float));
        if (id != FILTER_DEEPCQ) failures++;
        if (stored == 0 || stored * 3 > total * sizeof(float)) failures++;
        H5Pclose(dcpl_read);
    }
    H5Dclose(ds);
    H5Fclose(file);
    H5Pclose(fapl);
    free(original);
    free(back);

    int all = 0;
    MPI_Reduce(&failures, &all, 1, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0) printf(all == 0 ? "ALL OK\n" : "%d FAILURES\n", all);
    MPI_Bcast(&all, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return all == 0 ? 0 : 1;
}
