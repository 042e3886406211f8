# Sourced by the scripts that take no arguments but -h/--help.

# no_arguments WHO SCRIPT ARG...: --help or -h prints SCRIPT's header comment and exits 0; any other
# argument is refused in one line (exit 1). Returns when there are none.
no_arguments() {
  local who=$1 script=$2 arg
  shift 2
  for arg in "$@"; do
    case "$arg" in
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script"; exit 0 ;;
      -*) echo "$who: unknown option '$arg' (see --help)" >&2; exit 1 ;;
      *) echo "$who: unexpected argument '$arg' (it takes no arguments; see --help)" >&2; exit 1 ;;
    esac
  done
}
