"""The ``nlmeans`` command group and its entry point."""

import sys

import click

from nlmeans_cli import signals
from nlmeans_cli.batch import batch_command
from nlmeans_cli.compare import compare_command
from nlmeans_cli.denoise import denoise_command
from nlmeans_cli.noise import noise_command
from nlmeans_cli.noise_sample import noise_sample_command
from nlmeans_cli.estimate_noise import estimate_noise_command
from nlmeans_cli.video import video_command

EXAMPLES = """
Examples:

\b
  nlmeans denoise noisy.png clean.png
  nlmeans denoise noisy.png clean.png --h 10 --ds 2 --Ds 7
  nlmeans denoise scan.tif scan-clean.tif --h 800 --ds 3 --Ds 10
  nlmeans batch photos/ clean/ --recursive --jobs 2
  nlmeans noise clean.png noisy.png --sigma 20 --seed 1
  nlmeans compare clean.png noisy.png denoised.png --montage compare.png
  nlmeans estimate-noise noisy.png scan.tif
  nlmeans noise-sample shot1.jpg shot2.jpg noise.tif
  nlmeans video noisy.mp4 clean.mp4
"""


@click.group(epilog=EXAMPLES)
@click.version_option(package_name="nlmeans", prog_name="nlmeans")
def cli():
    """Fast non-local means (NL-means) image denoising."""


cli.add_command(denoise_command)
cli.add_command(batch_command)
cli.add_command(compare_command)
cli.add_command(noise_command)
cli.add_command(noise_sample_command)
cli.add_command(estimate_noise_command)
cli.add_command(video_command)


def main():
    """Console-script entry point: usage errors exit 2, other errors 1, never a traceback;
    Ctrl-C 130 and SIGTERM 143."""
    signals.install()
    try:
        # The same name however it was started (nlmeans, python -m nlmeans).
        rv = cli.main(prog_name="nlmeans", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # Click turns Ctrl-C and SIGTERM (raised as KeyboardInterrupts) into Abort:
        # the signal received says which.
        _stop(signals.exit_code_of_signal() or 130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug: still one line, never a traceback
        code = signals.exit_code_of_signal()
        if code:  # an interrupt swallowed on its way out (see signals): a stop, not a bug
            _stop(code)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        click.echo(f"Error: unexpected {type(exc).__name__}: {message}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _stop(code):
    click.echo("Terminated." if code == 143 else "Aborted.", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
