// fmt compiled into kbatch from Debian's libfmt-dev headers (see spdlog_build.cc for why): the
// non-template functions come from format-inl.h, and the templates that format.h declares
// extern are instantiated here for char.
#include <fmt/format-inl.h>

FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
