! write_fortran.f90: write a 3-D real field through the deepcq HDF5 filter from Fortran
! (h5pset_filter_f), and use the in-situ API directly (cd_values, advice, compress into a
! buffer and decompress, a field whose land holds a missing value).
!
! Build (from the repository root, after `cargo build --release`):
!   mkdir -p build
!   gfortran -Iinclude $(pkg-config --cflags --libs-only-L hdf5-serial) -Jbuild \
!       include/h5z_deepcq.f90 examples/write_fortran.f90 \
!       -lhdf5_fortran -lhdf5 -Ltarget/release -lh5z_deepcq \
!       -Wl,-rpath,$PWD/target/release -o write_fortran
! Run (the program loads the library from target/release, where no onnxruntime lies, so it
! is named; docs/insitu.md):
!   ORT_DYLIB_PATH=$PWD/third_party/onnxruntime/libonnxruntime.so \
!       HDF5_PLUGIN_PATH=$PWD/plugin ./write_fortran out.h5
!
! Note the index order: a(nx,ny,nz) in Fortran is C order [nz][ny][nx], so the in-situ
! API gets dims [nz,ny,nx] and HDF5's Fortran API reverses dims for the file itself.
program write_fortran
  use, intrinsic :: iso_c_binding
  use hdf5
  use h5z_deepcq
  implicit none

  integer, parameter :: nx = 48, ny = 40, nz = 24
  real(c_double), parameter :: target_db = 60.0d0
  real(c_float), dimension(nx, ny, nz), target :: a, back, decoded
  integer(c_int), dimension(H5Z_DEEPCQ_CD_MAX) :: cd
  integer(c_size_t) :: ncd, cdims(3), out_len, dec_len, capacity, info_dims(8), rank, nbytes
  integer(c_int) :: info_dtype
  character(kind=c_char), dimension(:), pointer :: version
  integer(c_int) :: status
  type(h5z_deepcq_advice) :: advice
  type(h5z_deepcq_report) :: report
  type(h5z_deepcq_session_stats_t) :: stats
  type(c_ptr) :: session, chunk_ptr
  integer :: t, session_met
  integer(c_int8_t), dimension(:), allocatable, target :: buf
  integer(hid_t) :: file, space, dcpl, dset
  integer(hsize_t), dimension(3) :: dims, chunk
  integer(size_t) :: nelmts
  integer :: hdferr, i, j, k
  character(len=256) :: path
  real(c_double) :: psnr_file, psnr_buf, psnr_ocean
  real(c_float), parameter :: land_value = 1.0e20
  logical, dimension(nx, ny, nz) :: land
  logical :: land_exact
  integer(hsize_t) :: stored

  if (command_argument_count() >= 1) then
    call get_command_argument(1, path)
  else
    path = 'write_fortran.h5'
  end if

  do k = 1, nz
    do j = 1, ny
      do i = 1, nx
        a(i, j, k) = real(sin(0.13d0 * i + 0.05d0 * k) * cos(0.11d0 * j) &
                          + 0.2d0 * sin(0.9d0 * i * j / nx), c_float)
      end do
    end do
  end do

  ! Settings: PSNR >= 60 dB, automatic compressor, guarantee mode.
  ncd = H5Z_DEEPCQ_CD_MAX
  status = h5z_deepcq_cd_values(H5Z_DEEPCQ_PSNR, target_db, H5Z_DEEPCQ_AUTO, &
                                H5Z_DEEPCQ_GUARANTEE, 0_c_int, cd, ncd)
  call check(status, 'h5z_deepcq_cd_values')
  call c_f_pointer(h5z_deepcq_version(), version, [16])
  print '(a,16a)', 'library version ', version(1:index_of_nul(version) - 1)
  print '(a,i0,a,6(1x,i0))', 'filter id ', h5z_deepcq_get_filter_id(), ', cd_values:', cd(1:ncd)

  ! In-situ API: advice, then compress into a caller buffer and decode it again.
  cdims = [int(nz, c_size_t), int(ny, c_size_t), int(nx, c_size_t)]
  status = h5z_deepcq_advise(c_loc(a), H5Z_DEEPCQ_FLOAT32, cdims, 3_c_size_t, cd, ncd, advice)
  call check(status, 'h5z_deepcq_advise')
  print '(a,i0,a,es10.3,a,f7.2,a,f8.2)', 'advice: codec ', advice%codec, ' bound ', &
        advice%bound, ' psnr ', advice%psnr, ' ratio ', advice%ratio

  allocate(buf(64))  ! deliberately too small: the call reports the size it needs
  status = h5z_deepcq_compress_into(c_loc(a), H5Z_DEEPCQ_FLOAT32, cdims, 3_c_size_t, cd, &
                                    ncd, c_loc(buf), int(size(buf), c_size_t), out_len, report)
  if (status /= H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL) call check(-100_c_int, 'size query')
  deallocate(buf)
  capacity = out_len
  allocate(buf(capacity))
  status = h5z_deepcq_compress_into(c_loc(a), H5Z_DEEPCQ_FLOAT32, cdims, 3_c_size_t, cd, &
                                    ncd, c_loc(buf), capacity, out_len, report)
  call check(status, 'h5z_deepcq_compress_into')
  ! The chunk describes itself: type, dims and the bytes it decodes to.
  rank = size(info_dims)
  status = h5z_deepcq_chunk_info(c_loc(buf), out_len, info_dtype, info_dims, rank, nbytes)
  call check(status, 'h5z_deepcq_chunk_info')
  if (info_dtype /= H5Z_DEEPCQ_FLOAT32 .or. rank /= 3 .or. any(info_dims(1:3) /= cdims) &
      .or. nbytes /= 4 * nx * ny * nz) call check(-100_c_int, 'chunk_info fields')
  status = h5z_deepcq_decompress(c_loc(buf), out_len, c_loc(decoded), &
                                 int(4 * nx * ny * nz, c_size_t), dec_len)
  call check(status, 'h5z_deepcq_decompress')
  psnr_buf = psnr(a, decoded)
  print '(a,i0,a,f7.2,a,f8.2,a,i0)', 'buffer: ', out_len, ' bytes, psnr ', psnr_buf, &
        ' ratio ', report%ratio, ' compressions ', report%compressions

  ! A session for a time-evolving variable: three steps, each verified by the library.
  status = h5z_deepcq_session_new(cd, ncd, 0_c_int, session)
  call check(status, 'h5z_deepcq_session_new')
  session_met = 0
  do t = 1, 3
    decoded = a * (1.0 + 0.1 * t)
    status = h5z_deepcq_session_compress(session, c_loc(decoded), H5Z_DEEPCQ_FLOAT32, cdims, &
                                         3_c_size_t, chunk_ptr, out_len, report)
    call check(status, 'h5z_deepcq_session_compress')
    call h5z_deepcq_free(chunk_ptr)
    session_met = session_met + report%target_met
  end do
  ! A fourth step into the caller's buffer, without a report (the C function gets NULL).
  decoded = a * 1.4
  status = h5z_deepcq_session_compress_into(session, c_loc(decoded), H5Z_DEEPCQ_FLOAT32, &
                                            cdims, 3_c_size_t, c_loc(buf), capacity, out_len)
  if (status == H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL) then
    deallocate(buf)
    capacity = out_len
    allocate(buf(capacity))
    status = h5z_deepcq_session_compress_into(session, c_loc(decoded), H5Z_DEEPCQ_FLOAT32, &
                                              cdims, 3_c_size_t, c_loc(buf), capacity, out_len)
  end if
  call check(status, 'h5z_deepcq_session_compress_into')
  status = h5z_deepcq_session_stats(session, stats)
  call check(status, 'h5z_deepcq_session_stats')
  call h5z_deepcq_session_free(session)
  print '(a,i0,a,i0,a,i0)', 'session: steps ', stats%steps, ' compressions ', &
        stats%compressions, ' met ', session_met

  ! A field with land: values equal to the missing value named in the cd_values are kept
  ! exactly, and the target holds over the ocean with the ocean's own range.
  land = .false.
  land(1:nx / 3, 1:ny / 2, :) = .true.
  decoded = merge(land_value, a, land)
  ncd = H5Z_DEEPCQ_CD_MAX
  status = h5z_deepcq_cd_values_missing(H5Z_DEEPCQ_PSNR, target_db, H5Z_DEEPCQ_AUTO, &
                                        H5Z_DEEPCQ_GUARANTEE, 0_c_int, 1.0d20, cd, ncd)
  call check(status, 'h5z_deepcq_cd_values_missing')
  status = h5z_deepcq_compress(c_loc(decoded), H5Z_DEEPCQ_FLOAT32, cdims, 3_c_size_t, cd, &
                               ncd, chunk_ptr, out_len, report)
  call check(status, 'h5z_deepcq_compress (missing value)')
  status = h5z_deepcq_decompress(chunk_ptr, out_len, c_loc(back), &
                                 int(4 * nx * ny * nz, c_size_t), dec_len)
  call check(status, 'h5z_deepcq_decompress (missing value)')
  call h5z_deepcq_free(chunk_ptr)
  land_exact = all(merge(back == land_value, back /= land_value, land))
  psnr_ocean = psnr_where(decoded, back, .not. land)
  print '(a,i0,a,f7.2,a,f7.2,a,l1)', 'land: ', out_len, ' bytes, ocean psnr ', psnr_ocean, &
        ' reported ', report%psnr, ' land exact ', land_exact
  ncd = H5Z_DEEPCQ_CD_MAX
  status = h5z_deepcq_cd_values(H5Z_DEEPCQ_PSNR, target_db, H5Z_DEEPCQ_AUTO, &
                                H5Z_DEEPCQ_GUARANTEE, 0_c_int, cd, ncd)
  call check(status, 'h5z_deepcq_cd_values')

  ! HDF5 through the filter. Fortran HDF5 1.10 has no H5Z_FLAG_MANDATORY_F: flags 0.
  call h5open_f(hdferr)
  dims = [integer(hsize_t) :: nx, ny, nz]
  chunk = [integer(hsize_t) :: 24, 20, 12]
  call h5fcreate_f(trim(path), H5F_ACC_TRUNC_F, file, hdferr)
  call h5screate_simple_f(3, dims, space, hdferr)
  call h5pcreate_f(H5P_DATASET_CREATE_F, dcpl, hdferr)
  call h5pset_chunk_f(dcpl, 3, chunk, hdferr)
  nelmts = int(ncd, size_t)
  call h5pset_filter_f(dcpl, int(H5Z_DEEPCQ_FILTER_ID), 0, nelmts, int(cd(1:ncd)), hdferr)
  if (hdferr < 0) error stop 'h5pset_filter_f failed'
  call h5dcreate_f(file, 'field', H5T_NATIVE_REAL, space, dset, hdferr, dcpl)
  if (hdferr < 0) error stop 'h5dcreate_f failed (is HDF5_PLUGIN_PATH set to plugin/?)'
  call h5dwrite_f(dset, H5T_NATIVE_REAL, a, dims, hdferr)
  if (hdferr < 0) error stop 'h5dwrite_f failed'
  call h5dclose_f(dset, hdferr)
  call h5pclose_f(dcpl, hdferr)
  call h5sclose_f(space, hdferr)
  call h5fclose_f(file, hdferr)

  call h5fopen_f(trim(path), H5F_ACC_RDONLY_F, file, hdferr)
  call h5dopen_f(file, 'field', dset, hdferr)
  call h5dread_f(dset, H5T_NATIVE_REAL, back, dims, hdferr)
  if (hdferr < 0) error stop 'h5dread_f failed'
  call h5dget_storage_size_f(dset, stored, hdferr)
  call h5dclose_f(dset, hdferr)
  call h5fclose_f(file, hdferr)
  call h5close_f(hdferr)

  psnr_file = psnr(a, back)
  print '(a,f0.2,a,i0,a,i0,a,f0.2,a,i0,a,i0,a,f0.2,a,a,a,a)', 'RESULT psnr=', psnr_file, &
        ' stored=', stored, ' raw=', 4 * nx * ny * nz, ' buffer_psnr=', psnr_buf, &
        ' session_met=', session_met, ' session_steps=', stats%steps, &
        ' ocean_psnr=', psnr_ocean, ' land_exact=', trim(merge('yes', 'no ', land_exact)), &
        ' met=', &
        trim(merge('yes', 'no ', psnr_file >= target_db .and. psnr_buf >= target_db))

contains

  ! The position of the first NUL in a C string.
  integer function index_of_nul(s)
    character(kind=c_char), dimension(:), intent(in) :: s
    do index_of_nul = 1, size(s)
      if (s(index_of_nul) == c_null_char) return
    end do
  end function index_of_nul

  subroutine check(status, what)
    integer(c_int), intent(in) :: status
    character(len=*), intent(in) :: what
    if (status /= H5Z_DEEPCQ_OK) then
      print '(a,a,i0,a,a)', what, ' failed: status ', status, ': ', &
            trim(h5z_deepcq_error_message())
      stop 1
    end if
  end subroutine check

  ! PSNR in dB, SZ convention: 20 log10(range) - 10 log10(MSE).
  function psnr(x, y) result(p)
    real(c_float), dimension(:, :, :), intent(in) :: x, y
    real(c_double) :: p, mse
    mse = sum((real(x, c_double) - real(y, c_double))**2) / size(x)
    p = 20.0d0 * log10(real(maxval(x) - minval(x), c_double)) - 10.0d0 * log10(mse)
  end function psnr

  ! The same over the values where mask holds, with their own range.
  function psnr_where(x, y, mask) result(p)
    real(c_float), dimension(:, :, :), intent(in) :: x, y
    logical, dimension(:, :, :), intent(in) :: mask
    real(c_double) :: p, mse
    mse = sum((real(x, c_double) - real(y, c_double))**2, mask) / count(mask)
    p = 20.0d0 * log10(real(maxval(x, mask) - minval(x, mask), c_double)) - 10.0d0 * log10(mse)
  end function psnr_where

end program write_fortran
