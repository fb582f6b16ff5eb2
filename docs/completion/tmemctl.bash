# bash completion for tmemctl(8) and its command-name links (tmem-list, ...).
# Install as /usr/share/bash-completion/completions/tmemctl (and link the
# command names to it), or source it from ~/.bashrc.

_tmemctl_commands="tmem-list tmem-freeze tmem-thaw tmem-destroy tmem-set
tmem-shared-auth tmem-freeable tmem-flush tmem-pool-create tmem-save
tmem-restore tmem-reserve tmem-top xen-info help"

# _tmemctl_domains prints the domain names, asking tmemctl with the global
# options already on the command line (so --socket is honoured).
_tmemctl_domains() {
    local prog=$1; shift
    "$prog" "$@" _domains 2>/dev/null
}

_tmemctl() {
    local cur prev prog cmd i w
    local -a global=()
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    prog=${COMP_WORDS[0]}
    case ${prog##*/} in
    tmem-*) cmd=${prog##*/}; prog=tmemctl; i=1 ;;
    *) cmd=; i=1 ;;
    esac
    # Global options and the command name.
    while [[ -z $cmd && $i -lt $COMP_CWORD ]]; do
        w=${COMP_WORDS[i]}
        case $w in
        --socket|-socket|--privcmd|-privcmd) global+=("$w" "${COMP_WORDS[i+1]}"); i=$((i+2)); continue ;;
        --direct|-direct) global+=("$w") ;;
        -*) ;;
        *) cmd=$w ;;
        esac
        i=$((i+1))
    done
    # Global options given after the command name count too.
    for ((w = i; w < COMP_CWORD; w++)); do
        case ${COMP_WORDS[w]} in
        --socket|-socket|--privcmd|-privcmd) global+=("${COMP_WORDS[w]}" "${COMP_WORDS[w+1]}") ;;
        --direct|-direct) global+=(--direct) ;;
        esac
    done

    case $prev in
    --socket|-socket|--privcmd|-privcmd)
        COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -o)
        case $cmd in
        tmem-list) COMPREPLY=($(compgen -W "text table json" -- "$cur")) ;;
        tmem-top) COMPREPLY=($(compgen -W "table json" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
        esac
        return ;;
    -s) [[ $cmd == tmem-top ]] && COMPREPLY=($(compgen -W "pages hits puts name" -- "$cur")); return ;;
    -A|-p) [[ $cmd == tmem-shared-auth || $cmd == tmem-set ]] && { COMPREPLY=($(compgen -W "0 1" -- "$cur")); return; } ;;
    -w|-c|-u|--uuid|-uuid|-d|-n|--mib|-mib|--timeout|-timeout|--domain|-domain) return ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--socket --direct --privcmd --help" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_tmemctl_commands" -- "$cur"))
        fi
        return
    fi

    local opts="" domains=0 files=0
    case $cmd in
    tmem-list) opts="-a -l -o"; domains=1 ;;
    tmem-freeze|tmem-thaw) opts="-a"; domains=1 ;;
    tmem-destroy) opts="-a -q"; domains=1 ;;
    tmem-set) opts="-a -w -c -p"; domains=1 ;;
    tmem-shared-auth) opts="-a -u -A -o"; domains=1 ;;
    tmem-freeable) opts="-o" ;;
    tmem-flush) opts="-a -p --mib -o" ;;
    tmem-pool-create) opts="--ephemeral --persistent --shared --uuid -o"; domains=1 ;;
    tmem-save|tmem-restore) domains=1; files=1 ;;
    tmem-reserve) opts="--domain --timeout -o" ;;
    tmem-top) opts="-d -s -n -b -o" ;;
    xen-info) opts="-o" ;;
    help) COMPREPLY=($(compgen -W "$_tmemctl_commands" -- "$cur")); return ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts --help --socket --direct --privcmd" -- "$cur"))
        return
    fi
    # The positional arguments so far (a rough count: options with values
    # are skipped by name).
    local npos=0
    for ((w = i; w < COMP_CWORD; w++)); do
        case ${COMP_WORDS[w]} in
        -o|-w|-c|-p|-u|-A|-d|-s|-n|--uuid|--mib|--timeout|--domain|--socket|--privcmd) w=$((w+1)) ;;
        -*) ;;
        *) npos=$((npos+1)) ;;
        esac
    done
    if [[ $files == 1 && $npos -ge 1 ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    elif [[ $domains == 1 && $npos -eq 0 ]]; then
        COMPREPLY=($(compgen -W "$(_tmemctl_domains "$prog" "${global[@]}")" -- "$cur"))
    fi
}

complete -F _tmemctl tmemctl tmem-list tmem-freeze tmem-thaw tmem-destroy tmem-set \
    tmem-shared-auth tmem-freeable tmem-flush tmem-pool-create tmem-save \
    tmem-restore tmem-reserve tmem-top
