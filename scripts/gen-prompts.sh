#!/usr/bin/env bash
# gen-prompts.sh: regenerate the announcement prompts of internal/media.
#
# Speech comes from espeak-ng (voices en, de, cmn for Mandarin, ko), is
# resampled by sox to 8 kHz mono 16-bit linear PCM (the only format
# internal/media reads) and written to internal/media/prompts/<locale>/<name>.wav.
# The Call Back alert chime is not speech: it is rendered by the Go tone
# generator (media.Tone(..., ToneCallbackAlert)) through a test helper, so
# the WAV and the live tone stay the same sound.
#
# Usage: scripts/gen-prompts.sh   (from anywhere inside the repository)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$root/internal/media/prompts"

if ! command -v espeak-ng >/dev/null || ! command -v sox >/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "gen-prompts: need espeak-ng and sox (apt-get install espeak-ng sox)" >&2
		exit 1
	fi
	apt-get update
	apt-get install -y --no-install-recommends espeak-ng sox
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Words per minute per voice: espeak-ng's Mandarin and Korean voices are
# slow at the default, which would push prompts past 10 seconds.
declare -A speed=([en]=160 [de]=165 [cmn]=210 [ko]=190)

# say LOCALE VOICE NAME TEXT
say() {
	local locale=$1 voice=$2 name=$3 text=$4
	mkdir -p "$out/$locale"
	espeak-ng -v "$voice" -s "${speed[$voice]}" -w "$tmp/raw.wav" -- "$text"
	# Trim leading and trailing silence, keep a short lead-in and tail,
	# cut rumble (after 3 dB of headroom), normalise to -6 dBFS peak, resample to 8 kHz without
	# dither so reruns give identical files.
	sox -D -v 0.7 "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$locale/$name.wav" \
		silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
		pad 0.2 0.3 highpass 150 gain -n -6
	printf '%-4s %-16s %s\n' "$locale" "$name" "$(soxi -d "$out/$locale/$name.wav")"
}

# English
say en en busy_offer      "The person you called is busy. Press 5 to be called back when they are free."
say en en noanswer_offer  "The person you called does not answer. Press 5 to be called back when they are available."
say en en loggedout_offer "The person you called is not available. Press 5 to be called back when they are available again."
say en en activated       "Call back is activated. You will be called when the line is free. Goodbye."
say en en connecting      "The person you asked to call back is available. Connecting."
say en en not_possible    "A call back is not possible for this number."

# German
say de de busy_offer      "Der gewünschte Teilnehmer ist besetzt. Drücken Sie die 5, um zurückgerufen zu werden, sobald er frei ist."
say de de noanswer_offer  "Der gewünschte Teilnehmer meldet sich nicht. Drücken Sie die 5, um zurückgerufen zu werden, sobald er erreichbar ist."
say de de loggedout_offer "Der gewünschte Teilnehmer ist nicht erreichbar. Drücken Sie die 5, um zurückgerufen zu werden, sobald er wieder erreichbar ist."
say de de activated       "Der Rückruf ist aktiviert. Sie werden angerufen, sobald der Anschluss frei ist. Auf Wiederhören."
say de de connecting      "Der Teilnehmer, für den Sie einen Rückruf angefordert haben, ist jetzt erreichbar. Sie werden verbunden."
say de de not_possible    "Ein Rückruf ist für diese Nummer nicht möglich."

# Chinese (Mandarin, simplified)
say zh cmn busy_offer      "您拨打的用户正忙。如需在对方空闲时回电，请按5。"
say zh cmn noanswer_offer  "您拨打的用户无人接听。如需在对方有空时回电，请按5。"
say zh cmn loggedout_offer "您拨打的用户暂时无法接通。如需在对方可以接听时回电，请按5。"
say zh cmn activated       "回叫已启用。线路空闲时，系统将给您回电。再见。"
say zh cmn connecting      "您要求回叫的用户现在有空，正在为您接通。"
say zh cmn not_possible    "此号码无法使用回叫服务。"

# Korean
say ko ko busy_offer      "지금 거신 상대방은 통화 중입니다. 통화가 끝나면 다시 전화를 받으시려면 5번을 누르세요."
say ko ko noanswer_offer  "지금 거신 상대방이 전화를 받지 않습니다. 상대방이 통화 가능할 때 다시 전화를 받으시려면 5번을 누르세요."
say ko ko loggedout_offer "지금 거신 상대방과 연결할 수 없습니다. 상대방이 다시 통화 가능할 때 전화를 받으시려면 5번을 누르세요."
say ko ko activated       "콜백이 설정되었습니다. 회선이 비면 전화를 드리겠습니다. 안녕히 계세요."
say ko ko connecting      "콜백을 요청하신 상대방이 지금 통화 가능합니다. 연결해 드리겠습니다."
say ko ko not_possible    "이 번호로는 콜백을 요청할 수 없습니다."

# The Call Back alert chime, rendered by the Go tone generator.
(cd "$root" && go test ./internal/media -run '^TestCallbackAlertPrompt$' -count=1 -args -gen-alert)
du -ch "$out"/*/*.wav | tail -1
