/* h5z_deepcq_register after H5close and H5open: HDF5 forgets the filters registered with it
 * when it closes (Fortran codes call h5open_f and h5close_f around each output step), so
 * each registration after a reopening must register the filter again, not report the
 * first. Run without HDF5_PLUGIN_PATH, so that only registering makes the filter available;
 * each round also writes and reads a dataset through it (an absolute bound, which needs
 * no model). Prints "ALL OK" and exits 0 on success. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>

#include "h5z_deepcq.h"

#define N 256

static int round_trip(int round) {
    unsigned cd[H5Z_DEEPCQ_CD_MAX];
    size_t ncd = H5Z_DEEPCQ_CD_MAX;
    if (h5z_deepcq_cd_values(H5Z_DEEPCQ_ABS, 1e-3, H5Z_DEEPCQ_SZ3, H5Z_DEEPCQ_GUARANTEE, 0, cd,
                             &ncd) != H5Z_DEEPCQ_OK)
        return 1;
    float data[N], back[N];
    for (int i = 0; i < N; i++) data[i] = (float)sin(0.05 * i + round);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t file = H5Fcreate("register_reopen.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    hsize_t dims[1] = {N}, chunk[1] = {N / 2};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_filter(dcpl, h5z_deepcq_filter_id(), H5Z_FLAG_MANDATORY, ncd, cd);
    hid_t ds = H5Dcreate2(file, "x", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int bad = ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0 ||
              H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, back) < 0;
    for (int i = 0; !bad && i < N; i++) bad = fabsf(back[i] - data[i]) > 1e-3f;
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    H5Pclose(fapl);
    return bad;
}

int main(void) {
    for (int round = 0; round < 3; round++) {
        if (H5open() < 0) return 2;
        if (H5Zfilter_avail(h5z_deepcq_filter_id()) > 0) {
            printf("round %d: filter available before registering (HDF5_PLUGIN_PATH set, or "
                   "HDF5 kept it through H5close)\n",
                   round);
            return 3;
        }
        if (h5z_deepcq_register() != H5Z_DEEPCQ_OK) {
            printf("round %d: h5z_deepcq_register failed\n", round);
            return 4;
        }
        if (H5Zfilter_avail(h5z_deepcq_filter_id()) <= 0) {
            printf("round %d: filter not available after h5z_deepcq_register\n", round);
            return 5;
        }
        if (round_trip(round) != 0) {
            printf("round %d: writing or reading through the filter failed\n", round);
            return 6;
        }
        if (H5close() < 0) return 7;
    }
    printf("ALL OK\n");
    return 0;
}
