! h5z_deepcq.f90: Fortran interface (ISO_C_BINDING; Fortran 2018, or 2008 with TS 29113,
! for the optional arguments of its bind(C) procedures) to the in-situ C API of
! h5z-deepcq. It mirrors include/h5z_deepcq.h; tests/examples.rs compiles it with
! gfortran and runs examples/write_fortran.f90 against the library.
!
! Conventions
! - Every function returning an integer status returns H5Z_DEEPCQ_OK (0) or a negative
!   H5Z_DEEPCQ_ERR_* code.
!   h5z_deepcq_last_error(buf, len) copies the message into a c_char buffer.
! - C "unsigned" arguments are integer(c_int) here, the same 32 bits: settings words are
!   small and non-negative, except the two words h5z_deepcq_cd_values_missing writes for
!   the missing value's f64 bits, which may read negative (-9999: its high word
!   3234039680 is -1060927616 here). Pass them on unchanged; never build them by hand.
! - dims are C order, slowest first: a Fortran array a(nx,ny,nz) has dims [nz,ny,nx].
! - Settings are cd_values: build them with h5z_deepcq_cd_values and pass the same
!   integer array to h5pset_filter_f (flags 0: HDF5 1.10 has no H5Z_FLAG_MANDATORY_F).
! - Pass data as c_loc(array); the array needs the TARGET attribute and must be
!   contiguous. c_loc of a section (u(2:nx-1, 2:ny-1, :), the interior of a field with
!   halo cells) or of an assumed-shape dummy gives the address of its first element only:
!   the library reads (and a decompression writes) the memory that follows as if the
!   values were contiguous. Copy such a section into a contiguous array first.
! - report is optional: left out, the C function gets NULL; h5z_deepcq_compress[_into]
!   in predict mode then spends no decode on measuring the chunk for it (guarantee and
!   fast mode measure anyway, and so does a session in every mode, which learns from it).
! - Fortran names are case-insensitive: the C function h5z_deepcq_filter_id is bound as
!   h5z_deepcq_get_filter_id here (the constant H5Z_DEEPCQ_FILTER_ID keeps its name).
module h5z_deepcq
  use, intrinsic :: iso_c_binding
  implicit none

  ! Status codes
  integer(c_int), parameter :: H5Z_DEEPCQ_OK = 0
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_INVALID_ARGUMENT = -1
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_SETTINGS = -2
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_BUFFER_TOO_SMALL = -3
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_CORRUPT = -4
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_COMPRESS = -5
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_HDF5 = -6
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_OUT_OF_MEMORY = -7
  integer(c_int), parameter :: H5Z_DEEPCQ_ERR_INTERNAL = -99

  ! Numbers shared with cd_values and chunk headers
  integer(c_int), parameter :: H5Z_DEEPCQ_FILTER_ID = 357
  ! Most words of a user's settings array. Stored cd_values read from a file
  ! (h5pget_filter_by_id_f) hold 10 + rank + up to 2, packed to 4 + rank + up to 2 where
  ! that is over 16, at most 42 words: size that buffer by 42, not by this.
  integer(c_int), parameter :: H5Z_DEEPCQ_CD_MAX = 8
  integer(c_int), parameter :: H5Z_DEEPCQ_FLOAT32 = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_FLOAT64 = 2
  integer(c_int), parameter :: H5Z_DEEPCQ_OPAQUE = 3
  integer(c_int), parameter :: H5Z_DEEPCQ_PSNR = 0
  integer(c_int), parameter :: H5Z_DEEPCQ_SSIM = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_RATIO = 2
  integer(c_int), parameter :: H5Z_DEEPCQ_ABS = 3
  integer(c_int), parameter :: H5Z_DEEPCQ_AUTO = 0
  integer(c_int), parameter :: H5Z_DEEPCQ_SZ3 = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_ZFP = 2
  integer(c_int), parameter :: H5Z_DEEPCQ_SPERR = 3
  integer(c_int), parameter :: H5Z_DEEPCQ_LOSSLESS = 0
  integer(c_int), parameter :: H5Z_DEEPCQ_GUARANTEE = 0
  integer(c_int), parameter :: H5Z_DEEPCQ_PREDICT = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_FAST = 2
  integer(c_int), parameter :: H5Z_DEEPCQ_FLAG_ANALYTIC_FALLBACK = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_SESSION_NO_ADAPT = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_SOURCE_MEASURED = 1
  integer(c_int), parameter :: H5Z_DEEPCQ_SOURCE_MODEL = 2

  ! struct h5z_deepcq_report
  type, bind(C) :: h5z_deepcq_report
    integer(c_int) :: codec
    integer(c_int) :: compressions
    integer(c_int) :: target_met
    real(c_double) :: bound
    real(c_double) :: metric
    real(c_double) :: psnr
    real(c_double) :: ratio
    real(c_double) :: correction
  end type h5z_deepcq_report

  ! struct h5z_deepcq_advice
  type, bind(C) :: h5z_deepcq_advice
    integer(c_int) :: codec
    integer(c_int) :: source
    integer(c_int) :: compressions
    real(c_double) :: bound
    real(c_double) :: psnr
    real(c_double) :: ssim
    real(c_double) :: ratio
  end type h5z_deepcq_advice

  ! struct h5z_deepcq_session_stats_t
  type, bind(C) :: h5z_deepcq_session_stats_t
    integer(c_int64_t) :: steps
    integer(c_int64_t) :: compressions
    integer(c_int64_t) :: misses
  end type h5z_deepcq_session_stats_t

  interface
    ! const char *h5z_deepcq_version(void)
    function h5z_deepcq_version() bind(C, name="h5z_deepcq_version")
      import :: c_ptr
      type(c_ptr) :: h5z_deepcq_version
    end function

    ! unsigned h5z_deepcq_filter_id(void). Fortran names are case-insensitive, so this
    ! one is renamed: h5z_deepcq_filter_id would clash with H5Z_DEEPCQ_FILTER_ID.
    function h5z_deepcq_get_filter_id() bind(C, name="h5z_deepcq_filter_id")
      import :: c_int
      integer(c_int) :: h5z_deepcq_get_filter_id
    end function

    ! size_t h5z_deepcq_last_error(char *buf, size_t len)
    function h5z_deepcq_last_error(buf, len) bind(C, name="h5z_deepcq_last_error")
      import :: c_char, c_size_t
      character(kind=c_char), dimension(*), intent(out) :: buf
      integer(c_size_t), value :: len
      integer(c_size_t) :: h5z_deepcq_last_error
    end function

    ! int h5z_deepcq_register(void)
    function h5z_deepcq_register() bind(C, name="h5z_deepcq_register")
      import :: c_int
      integer(c_int) :: h5z_deepcq_register
    end function

    ! int h5z_deepcq_cd_values(unsigned kind, double target, unsigned compressor,
    !                          unsigned mode, unsigned flags, unsigned *cd_values, size_t *n)
    function h5z_deepcq_cd_values(kind, target, compressor, mode, flags, cd_values, n) &
        bind(C, name="h5z_deepcq_cd_values")
      import :: c_int, c_double, c_size_t
      integer(c_int), value :: kind, compressor, mode, flags
      real(c_double), value :: target
      integer(c_int), dimension(*), intent(out) :: cd_values
      integer(c_size_t), intent(inout) :: n
      integer(c_int) :: h5z_deepcq_cd_values
    end function

    ! int h5z_deepcq_cd_values_missing(unsigned kind, double target, unsigned compressor,
    !                                  unsigned mode, unsigned flags, double missing,
    !                                  unsigned *cd_values, size_t *n)
    ! Values equal to missing (land, gaps) are stored exactly and left out of the target.
    ! Without one, a buffer's NaN (or +Inf, or -Inf) marks itself the same way.
    function h5z_deepcq_cd_values_missing(kind, target, compressor, mode, flags, missing, &
        cd_values, n) bind(C, name="h5z_deepcq_cd_values_missing")
      import :: c_int, c_double, c_size_t
      integer(c_int), value :: kind, compressor, mode, flags
      real(c_double), value :: target, missing
      integer(c_int), dimension(*), intent(out) :: cd_values
      integer(c_size_t), intent(inout) :: n
      integer(c_int) :: h5z_deepcq_cd_values_missing
    end function

    ! int h5z_deepcq_advise(const void *data, unsigned dtype, const size_t *dims,
    !                       size_t rank, const unsigned *cd_values, size_t n_cd,
    !                       h5z_deepcq_advice *advice)
    function h5z_deepcq_advise(data, dtype, dims, rank, cd_values, n_cd, advice) &
        bind(C, name="h5z_deepcq_advise")
      import :: c_int, c_size_t, c_ptr, h5z_deepcq_advice
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_size_t), dimension(*), intent(in) :: dims
      integer(c_size_t), value :: rank
      integer(c_int), dimension(*), intent(in) :: cd_values
      integer(c_size_t), value :: n_cd
      type(h5z_deepcq_advice), intent(out) :: advice
      integer(c_int) :: h5z_deepcq_advise
    end function

    ! int h5z_deepcq_compress(const void *data, unsigned dtype, const size_t *dims,
    !     size_t rank, const unsigned *cd_values, size_t n_cd, void **out, size_t *out_len,
    !     h5z_deepcq_report *report)     -- release *out with h5z_deepcq_free
    function h5z_deepcq_compress(data, dtype, dims, rank, cd_values, n_cd, out, out_len, &
        report) bind(C, name="h5z_deepcq_compress")
      import :: c_int, c_size_t, c_ptr, h5z_deepcq_report
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_size_t), dimension(*), intent(in) :: dims
      integer(c_size_t), value :: rank
      integer(c_int), dimension(*), intent(in) :: cd_values
      integer(c_size_t), value :: n_cd
      type(c_ptr), intent(out) :: out
      integer(c_size_t), intent(out) :: out_len
      type(h5z_deepcq_report), intent(out), optional :: report
      integer(c_int) :: h5z_deepcq_compress
    end function

    ! int h5z_deepcq_compress_into(..., void *out, size_t capacity, size_t *out_len,
    !                              h5z_deepcq_report *report)
    function h5z_deepcq_compress_into(data, dtype, dims, rank, cd_values, n_cd, out, &
        capacity, out_len, report) bind(C, name="h5z_deepcq_compress_into")
      import :: c_int, c_size_t, c_ptr, h5z_deepcq_report
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_size_t), dimension(*), intent(in) :: dims
      integer(c_size_t), value :: rank
      integer(c_int), dimension(*), intent(in) :: cd_values
      integer(c_size_t), value :: n_cd
      type(c_ptr), value :: out
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: out_len
      type(h5z_deepcq_report), intent(out), optional :: report
      integer(c_int) :: h5z_deepcq_compress_into
    end function

    ! int h5z_deepcq_chunk_info(const void *chunk, size_t len, unsigned *dtype,
    !                           size_t *dims, size_t *rank, size_t *nbytes)
    function h5z_deepcq_chunk_info(chunk, len, dtype, dims, rank, nbytes) &
        bind(C, name="h5z_deepcq_chunk_info")
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: chunk
      integer(c_size_t), value :: len
      integer(c_int), intent(out) :: dtype
      integer(c_size_t), dimension(*), intent(out) :: dims
      integer(c_size_t), intent(inout) :: rank
      integer(c_size_t), intent(out) :: nbytes
      integer(c_int) :: h5z_deepcq_chunk_info
    end function

    ! int h5z_deepcq_decompress(const void *chunk, size_t len, void *out, size_t capacity,
    !                           size_t *out_len)
    function h5z_deepcq_decompress(chunk, len, out, capacity, out_len) &
        bind(C, name="h5z_deepcq_decompress")
      import :: c_int, c_size_t, c_ptr
      type(c_ptr), value :: chunk
      integer(c_size_t), value :: len
      type(c_ptr), value :: out
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: out_len
      integer(c_int) :: h5z_deepcq_decompress
    end function

    ! int h5z_deepcq_session_new(const unsigned *cd_values, size_t n_cd, unsigned options,
    !                            h5z_deepcq_session **session)
    function h5z_deepcq_session_new(cd_values, n_cd, options, session) &
        bind(C, name="h5z_deepcq_session_new")
      import :: c_int, c_size_t, c_ptr
      integer(c_int), dimension(*), intent(in) :: cd_values
      integer(c_size_t), value :: n_cd
      integer(c_int), value :: options
      type(c_ptr), intent(out) :: session
      integer(c_int) :: h5z_deepcq_session_new
    end function

    ! int h5z_deepcq_session_compress(const h5z_deepcq_session *session, const void *data,
    !     unsigned dtype, const size_t *dims, size_t rank, void **out, size_t *out_len,
    !     h5z_deepcq_report *report)
    function h5z_deepcq_session_compress(session, data, dtype, dims, rank, out, out_len, &
        report) bind(C, name="h5z_deepcq_session_compress")
      import :: c_int, c_size_t, c_ptr, h5z_deepcq_report
      type(c_ptr), value :: session
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_size_t), dimension(*), intent(in) :: dims
      integer(c_size_t), value :: rank
      type(c_ptr), intent(out) :: out
      integer(c_size_t), intent(out) :: out_len
      type(h5z_deepcq_report), intent(out), optional :: report
      integer(c_int) :: h5z_deepcq_session_compress
    end function

    ! int h5z_deepcq_session_compress_into(const h5z_deepcq_session *session,
    !     const void *data, unsigned dtype, const size_t *dims, size_t rank, void *out,
    !     size_t capacity, size_t *out_len, h5z_deepcq_report *report)
    function h5z_deepcq_session_compress_into(session, data, dtype, dims, rank, out, &
        capacity, out_len, report) bind(C, name="h5z_deepcq_session_compress_into")
      import :: c_int, c_size_t, c_ptr, h5z_deepcq_report
      type(c_ptr), value :: session
      type(c_ptr), value :: data
      integer(c_int), value :: dtype
      integer(c_size_t), dimension(*), intent(in) :: dims
      integer(c_size_t), value :: rank
      type(c_ptr), value :: out
      integer(c_size_t), value :: capacity
      integer(c_size_t), intent(out) :: out_len
      type(h5z_deepcq_report), intent(out), optional :: report
      integer(c_int) :: h5z_deepcq_session_compress_into
    end function

    ! int h5z_deepcq_session_stats(const h5z_deepcq_session *session,
    !                              h5z_deepcq_session_stats_t *stats)
    function h5z_deepcq_session_stats(session, stats) bind(C, name="h5z_deepcq_session_stats")
      import :: c_int, c_ptr, h5z_deepcq_session_stats_t
      type(c_ptr), value :: session
      type(h5z_deepcq_session_stats_t), intent(out) :: stats
      integer(c_int) :: h5z_deepcq_session_stats
    end function

    ! void h5z_deepcq_session_free(h5z_deepcq_session *session)
    ! The handle passes by value, so it cannot be cleared here: set it to c_null_ptr after
    ! the call (freeing c_null_ptr does nothing; freeing one handle twice is undefined).
    subroutine h5z_deepcq_session_free(session) bind(C, name="h5z_deepcq_session_free")
      import :: c_ptr
      type(c_ptr), value :: session
    end subroutine

    ! void h5z_deepcq_free(void *ptr)
    subroutine h5z_deepcq_free(ptr) bind(C, name="h5z_deepcq_free")
      import :: c_ptr
      type(c_ptr), value :: ptr
    end subroutine
  end interface

contains

  ! The calling thread's last error message as a Fortran string (blank-padded).
  function h5z_deepcq_error_message() result(message)
    character(len=512) :: message
    character(kind=c_char), dimension(512) :: buf
    integer(c_size_t) :: n
    integer :: i
    buf = c_null_char
    n = h5z_deepcq_last_error(buf, int(size(buf), c_size_t))
    message = ' '
    do i = 1, size(buf)
      if (buf(i) == c_null_char) exit
      message(i:i) = buf(i)
    end do
  end function h5z_deepcq_error_message

end module h5z_deepcq
