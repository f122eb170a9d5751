"""Everything spoken: offline text-to-speech (`tts`, its worker process `tts_worker`, WAV checks
in `wav`), the fixed prompts (`prompts`, texts in `ivr/prompts/*.json`) and the sentences built
from data (`speech`, wording in `phrases`), in French and English."""
