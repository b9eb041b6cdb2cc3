/* A program linked statically to HDF5 (h5cc's default) exports no HDF5 functions to the
 * plugin HDF5 loads: creating a deepcq dataset fails, and the filter says why on stderr.
 * usage: static_link OUTPUT.h5; prints "refused" or "created". */
#include <hdf5.h>
#include <stdio.h>

int main(int argc, char **argv) {
    hsize_t dims[1] = {1000}, chunk[1] = {500};
    hid_t file = H5Fcreate(argc > 1 ? argv[1] : "static.h5", H5F_ACC_TRUNC, H5P_DEFAULT,
                           H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const unsigned cd[1] = {60};
    H5Pset_chunk(dcpl, 1, chunk);
    H5Pset_filter(dcpl, 357, H5Z_FLAG_MANDATORY, 1, cd);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t ds = H5Dcreate2(file, "t", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    printf(ds < 0 ? "refused\n" : "created\n");
    if (ds >= 0) H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Fclose(file);
    return 0;
}
