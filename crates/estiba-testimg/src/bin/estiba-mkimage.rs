//! `estiba-mkimage`: writes the project's sample and test images as `docker load` tarballs.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use estiba_testimg::{write_archive, ArchiveOptions, Compression, Format};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ImageKind {
    /// One layer: Debian's busybox-static and its applet links.
    Busybox,
    /// busybox plus three layers (whiteout, opaque dir, links, owners, setuid).
    Layered,
    /// One ~75 MB layer, for the load benchmark.
    Big,
    /// A hostile or broken tarball (see --case), for checking a loader by hand.
    Hostile,
    /// --count small distinct images in one archive, for the list benchmark.
    Many,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Docker,
    Oci,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    None,
    Gzip,
    Zstd,
}

/// Writes a deterministic test image as a tarball for `docker load -i`.
#[derive(Debug, Parser)]
#[command(name = "estiba-mkimage", version)]
struct Args {
    image: ImageKind,
    /// Output file ("-" for stdout).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value = "docker")]
    format: FormatArg,
    /// Layer compression inside the archive.
    #[arg(long, value_enum, default_value = "none")]
    compression: CompressionArg,
    /// Tag(s) to save the image under instead of its default one (repeatable).
    #[arg(long)]
    tag: Vec<String>,
    /// The hostile case to write (with `hostile`): one of estiba_testimg::hostile::CASES.
    #[arg(long, default_value = "truncated")]
    case: String,
    /// The token hostile escapes aim at (/tmp/estiba-escape-TOKEN).
    #[arg(long, default_value = "manual")]
    token: String,
    /// How many images `many` writes.
    #[arg(long, default_value_t = 1000)]
    count: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let image = match args.image {
        ImageKind::Busybox => estiba_testimg::busybox(),
        ImageKind::Layered => estiba_testimg::layered(),
        ImageKind::Big => estiba_testimg::big(),
        ImageKind::Hostile => return write_hostile(&args),
        ImageKind::Many => return write_many(&args),
    }
    .context("making the image")?;
    write_image(&args, image)
}

fn write_hostile(args: &Args) -> anyhow::Result<()> {
    {
        let hostile =
            estiba_testimg::hostile::case(&args.case, &args.token).with_context(|| {
                format!("known cases: {}", estiba_testimg::hostile::CASES.join(", "))
            })?;
        std::fs::write(&args.output, &hostile.tarball)
            .with_context(|| format!("writing {}", args.output.display()))?;
        eprintln!("{}: {}", hostile.name, hostile.what);
    }
    Ok(())
}

fn write_many(args: &Args) -> anyhow::Result<()> {
    let images = estiba_testimg::many(args.count).context("making the images")?;
    let refs: Vec<&estiba_testimg::TestImage> = images.iter().collect();
    let file = File::create(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let mut out = write_archive(&refs, options(args), BufWriter::new(file))?;
    out.flush()
        .with_context(|| format!("writing {}", args.output.display()))?;
    eprintln!("{} images", images.len());
    Ok(())
}

fn options(args: &Args) -> ArchiveOptions {
    ArchiveOptions {
        format: match args.format {
            FormatArg::Docker => Format::Docker,
            FormatArg::Oci => Format::Oci,
        },
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
    }
}

fn write_image(args: &Args, image: estiba_testimg::TestImage) -> anyhow::Result<()> {
    let image = if args.tag.is_empty() {
        image
    } else {
        image.with_tags(args.tag.clone())
    };
    let options = options(args);
    if args.output.as_os_str() == "-" {
        let stdout = std::io::stdout().lock();
        let mut out = write_archive(&[&image], options, BufWriter::new(stdout))?;
        out.flush().context("writing to stdout")?;
    } else {
        if args.output.is_dir() {
            bail!("{} is a directory", args.output.display());
        }
        let file = File::create(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
        let out = write_archive(&[&image], options, BufWriter::new(file))?;
        let file = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", args.output.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", args.output.display()))?;
    }
    eprintln!("{} {}", image.id(), image.repo_tags.join(" "));
    Ok(())
}
