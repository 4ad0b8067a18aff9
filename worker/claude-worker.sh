#!/bin/sh
# claude-worker: one Claude Code run per mecha task, started by mecha-worker.
#
# mecha-worker writes the prompt to standard input and reads the answer from standard output;
# `claude -p --output-format json` reads the one and writes a summary that mecha-worker maps to
# mecha's result (output, token counts, cost). The settings come from the worker's `docker.env`,
# so one image serves every worker:
#
#   CLAUDE_MODEL             --model
#   CLAUDE_SYSTEM_PROMPT     --append-system-prompt
#   CLAUDE_PERMISSION_MODE   --permission-mode (e.g. acceptEdits, bypassPermissions)
#   CLAUDE_MAX_TURNS         --max-turns
#   CLAUDE_ALLOWED_TOOLS     --allowedTools, a comma-separated list
#   CLAUDE_DISALLOWED_TOOLS  --disallowedTools, a comma-separated list
#
# Arguments given to this script are passed on to claude, before these.
set -eu

set -- "$@" -p --output-format json

if [ -n "${CLAUDE_MODEL:-}" ]; then
    set -- "$@" --model "$CLAUDE_MODEL"
fi
if [ -n "${CLAUDE_SYSTEM_PROMPT:-}" ]; then
    set -- "$@" --append-system-prompt "$CLAUDE_SYSTEM_PROMPT"
fi
if [ -n "${CLAUDE_PERMISSION_MODE:-}" ]; then
    set -- "$@" --permission-mode "$CLAUDE_PERMISSION_MODE"
fi
if [ -n "${CLAUDE_MAX_TURNS:-}" ]; then
    set -- "$@" --max-turns "$CLAUDE_MAX_TURNS"
fi

# Each tool is its own argument, trimmed: a rule such as `Bash(npm run test:*)` holds spaces, so
# the list is split on commas only.
for setting in "--allowedTools=${CLAUDE_ALLOWED_TOOLS:-}" "--disallowedTools=${CLAUDE_DISALLOWED_TOOLS:-}"; do
    flag=${setting%%=*}
    list=${setting#*=}
    flag_given=
    set -f
    old_ifs=$IFS
    IFS=,
    for tool in $list; do
        tool=${tool#"${tool%%[![:space:]]*}"}
        tool=${tool%"${tool##*[![:space:]]}"}
        [ -n "$tool" ] || continue
        if [ -z "$flag_given" ]; then
            set -- "$@" "$flag"
            flag_given=1
        fi
        set -- "$@" "$tool"
    done
    IFS=$old_ifs
    set +f
done

exec claude "$@"
