package screen

// The catalogue: one table per locale, like the Cisco "Call Back Dictionary"
// (seed 003) that the service reads per installed locale. Placeholders:
// {dn} = Screen.DN, {old} = Screen.OldDN, {time} = Screen.At in timeLayout.
// A kind missing in a locale falls back to English.
//
// Where the sentences come from:
//   - en: seed 002 (F4, F12), seeds 000/001 error messages (F6, F7, F8, "Key
//     Not Active"; the zh and ko seeds print them in English, so zh and ko fall
//     back to these). Ours (no seed sentence): AvailableDND (worded after F22),
//     AvailableEnded (F18), ReplaceAvailable (F26: says what Cisco forgets),
//     Deactivated, Expired (F19).
//   - zh, ko: the DND-Reject notification of seeds 000/001; nothing else is
//     given in those languages by the seeds.
//   - de: ours (UCware's language), in the style of the English ones.

type locale struct {
	timeLayout string // Go layout for {time}
	text       map[Kind]string
}

var catalog = map[string]*locale{
	"en": {
		timeLayout: "15:04 01/02/2006", // seed 002: "Time HH:MM MM/DD/YYYY"
		text: map[Kind]string{
			None:             "",
			Activated:        "CallBack is activated on {dn}\nPress Cancel to deactivate\nPress Exit to quit this screen",
			Available:        "{dn} has become available\nTime {time}\nPress Dial to call\nPress Cancel to deactivate\nPress Exit to quit this screen",
			AvailableDND:     "{dn} is now available but in DND-Reject\nPress Cancel to deactivate\nPress Exit to quit this screen",
			AvailableEnded:   "{dn} has become available\nTime {time}\nCallBack has ended, dial {dn} to call\nPress Exit to quit this screen",
			Replace:          "CallBack is already active on {old}. Press OK to activate on {dn}. Press Exit to quit this screen.",
			ReplaceAvailable: "CallBack is already active on {old}. {old} has become available at {time}. Press OK to activate on {dn}. Press Exit to quit this screen.",
			NotActive:        "CallBack is not active. Press Exit to quit this screen.",
			CannotActivate:   "CallBack cannot be activated for {dn}.",
			KeyNotActive:     "Key Not Active",
			Deactivated:      "CallBack is deactivated on {dn}\nPress Exit to quit this screen",
			Expired:          "CallBack on {dn} has expired and was deleted\nPress Exit to quit this screen",
		},
	},
	"de": {
		timeLayout: "15:04 02.01.2006",
		text: map[Kind]string{
			None:             "",
			Activated:        "Rückruf ist für {dn} aktiviert\nAbbrechen drücken zum Deaktivieren\nBeenden drücken, um diese Anzeige zu verlassen",
			Available:        "{dn} ist jetzt erreichbar\nZeit {time}\nWählen drücken zum Anrufen\nAbbrechen drücken zum Deaktivieren\nBeenden drücken, um diese Anzeige zu verlassen",
			AvailableDND:     "{dn} ist jetzt erreichbar, aber auf Nicht stören (Abweisen)\nAbbrechen drücken zum Deaktivieren\nBeenden drücken, um diese Anzeige zu verlassen",
			AvailableEnded:   "{dn} ist jetzt erreichbar\nZeit {time}\nRückruf beendet, {dn} bitte selbst wählen\nBeenden drücken, um diese Anzeige zu verlassen",
			Replace:          "Rückruf ist bereits für {old} aktiv. OK drücken, um ihn für {dn} zu aktivieren. Beenden drücken, um diese Anzeige zu verlassen.",
			ReplaceAvailable: "Rückruf ist bereits für {old} aktiv. {old} ist seit {time} erreichbar. OK drücken, um ihn für {dn} zu aktivieren. Beenden drücken, um diese Anzeige zu verlassen.",
			NotActive:        "Rückruf ist nicht aktiv. Beenden drücken, um diese Anzeige zu verlassen.",
			CannotActivate:   "Rückruf kann für {dn} nicht aktiviert werden.",
			KeyNotActive:     "Taste nicht aktiv",
			Deactivated:      "Rückruf für {dn} ist deaktiviert\nBeenden drücken, um diese Anzeige zu verlassen",
			Expired:          "Rückruf für {dn} ist abgelaufen und wurde gelöscht\nBeenden drücken, um diese Anzeige zu verlassen",
		},
	},
	"zh": {
		timeLayout: "15:04 01/02/2006",
		text: map[Kind]string{
			// seed 000: 用户 A 将收到通知“用户 B 现在有空，但现在处于“DND-拒绝”状态”，此时不会显示“拨号”选项
			AvailableDND: "用户 {dn} 现在有空，但现在处于“DND-拒绝”状态",
		},
	},
	"ko": {
		timeLayout: "15:04 01/02/2006",
		text: map[Kind]string{
			// seed 001: 사용자 A는 "현재 사용자 B를 DND-R에서 사용할 수 있음"이라는 알림을 받고 다이얼 옵션이 표시되지 않습니다
			AvailableDND: "현재 사용자 {dn}를 DND-R에서 사용할 수 있음",
		},
	},
}
