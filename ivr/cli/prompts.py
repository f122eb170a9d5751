"""`ivr prompts build`: render the fixed voice prompts and say what changed."""

from __future__ import annotations

import argparse
import asyncio

from ivr.cli.common import Commands
from ivr.config import LANGUAGES, load_config
from ivr.voice.prompts import install_prompts, prompt_dir
from ivr.voice.tts import Speaker
from ivr.voice.wav import wav_duration


def register(commands: Commands) -> None:
    prompts = commands.add_parser("prompts", help="render the fixed voice prompts (IVR_AUDIO_DIR)")
    build = prompts.add_subparsers(dest="prompts_command", required=True).add_parser(
        "build", help="render every fixed prompt with the offline TTS; unchanged files stay"
    )
    build.add_argument("--lang", choices=(*LANGUAGES, "all"), default="all")
    build.set_defaults(func=lambda args: asyncio.run(build_prompts(args)))


async def build_prompts(args: argparse.Namespace) -> int:
    config = load_config(require_ami_credentials=False)
    languages = LANGUAGES if args.lang == "all" else (args.lang,)
    total = 0.0
    async with Speaker(config.audio_dir, rate=config.tts_rate, timeout=config.tts_timeout) as sp:
        for language in languages:
            written = await install_prompts(sp, language)
            seconds = 0.0
            for name, changed in written.items():
                length = wav_duration(prompt_dir(config.audio_dir, language) / f"{name}.wav")
                seconds += length
                print(f"{language}/{name}: {'rendered' if changed else 'unchanged'} {length:.1f} s")
            done = sum(written.values())
            print(
                f"{language}: {len(written)} prompts, {done} rendered, {len(written) - done} "
                f"unchanged, {seconds:.1f} s of speech at {config.tts_rate} words per minute"
            )
            total += seconds
    print(f"total: {total:.1f} s of prompts under {config.audio_dir / 'prompts'}")
    return 0
