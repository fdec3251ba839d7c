"""mp4 clips, an optional extra: with PyAV installed a video file is sampled as the animated images are (one frame
every 1.5 s, the frame on screen then); without it, one line says what to install. Clips made here: 3 s at
4 frames a second, red for the first 1.5 s and blue after."""

import io

import pytest

from peftbench.models import encoders

FPS, SECONDS = 4, 3


def mp4(colours: list[tuple[int, int, int]]) -> bytes:
    av = pytest.importorskip("av")
    from PIL import Image

    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for colour in colours:
            frame = av.VideoFrame.from_image(Image.new("RGB", (32, 32), colour))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return out.getvalue()


def test_an_mp4_clip_is_sampled_every_interval_as_an_animated_image_is():
    red, blue = (220, 20, 20), (20, 20, 220)
    data = mp4([red] * int(1.5 * FPS) + [blue] * int(1.5 * FPS))
    frames = encoders.sampled_frames(data, 1.5)
    assert len(frames) == 2  # at 0 s and 1.5 s of a 3 s clip
    first, second = (f.getpixel((16, 16)) for f in frames)
    assert first[0] > 150 > first[2] and second[2] > 150 > second[0]  # red, then blue (the codec is lossy)
    tokens = encoders.clip_tokens("tiny-clip-vit", [data])
    assert tokens.shape[0] == 1 and tokens.abs().sum() > 0


def test_without_pyav_a_video_file_is_one_line_naming_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("no av")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(ValueError, match=r"reading video files needs PyAV \(pip install av\)"):
        encoders.sampled_frames(b"\x00\x00\x00\x18ftypmp42 not an image", 1.5)
