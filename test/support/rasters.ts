/**
 * Test rasters made and read by GDAL itself (the reference for every raster case, like geotiff.js's
 * GDAL-generated fixtures). Writing: raw little-endian samples + a VRT describing them (geotransform,
 * nodata, band descriptions), then `gdal_translate` to GTiff/COG with the requested layout.
 * Reading: `gdalinfo -json` for metadata and `gdal_translate -of ENVI -ot Float64` for the samples.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Affine } from '../../shared/mixer.js';
import type { SampleType } from '../../shared/raster/types.js';
import { run } from './oracles.js';
import { removeOnExit } from './files.js';

export interface GeoTiffSpec {
  width: number;
  height: number;
  /** One array of `width*height` samples (row-major) per band. */
  bands: ArrayLike<number>[];
  type: SampleType;
  /** GDAL nodata value (one for all bands, as in the GDAL_NODATA tag). */
  nodata?: number;
  /** Mixer order: [xScale, xShear, xTranslation, yShear, yScale, yTranslation] (docs/semantics.md §6). */
  affine: Affine;
  /** Anything `gdal_translate -a_srs` accepts, e.g. "EPSG:32633". */
  crs: string;
  /** Band descriptions (GDAL writes them as GDAL_METADATA `role="description"` items). */
  bandNames?: string[];
  layout?: 'GTiff' | 'COG';
  /** Tile size (square); omitted for GTiff = striped. */
  blockSize?: number;
  /** TIFF compression (GDAL's names; LERC* are lossless with GDAL's default MAX_Z_ERROR=0, but GDAL 3.6 fails to read some of its own LERC files). */
  compress?: 'NONE' | 'DEFLATE' | 'LZW' | 'PACKBITS' | 'ZSTD' | 'LERC' | 'LERC_DEFLATE' | 'LERC_ZSTD';
  /** TIFF predictor (2 = horizontal differencing, 3 = floating point); needs DEFLATE, LZW or ZSTD. */
  predictor?: 1 | 2 | 3;
  /** Rows per strip for striped GTiff. */
  rowsPerStrip?: number;
  /** Write PixelIsPoint georeferencing (GDAL shifts the tiepoint by half a pixel). */
  pixelIsPoint?: boolean;
  /** Pixel interleaving (GTiff only); default GDAL's choice (PIXEL for several bands). */
  interleave?: 'PIXEL' | 'BAND';
  /** Extra `gdal_translate` arguments. */
  extraArgs?: string[];
}

export interface GdalRaster {
  width: number;
  height: number;
  /** Per band, row-major samples as GDAL reads them (int8 sign-corrected on GDAL < 3.7). */
  bands: Float64Array[];
  affine: Affine;
  /** "EPSG:n" when GDAL knows the code, else the WKT. */
  crs: string;
  /** Per band GDAL nodata (undefined when unset); for Float32 bands the float32 value GDAL masks against. */
  nodata: (number | undefined)[];
  bandNames: (string | undefined)[];
  /** 'COG' when GDAL reports LAYOUT=COG, else 'GTiff'. */
  layout: 'GTiff' | 'COG';
  /** Block size of band 1 as GDAL reports it ([w, h]). */
  blockSize: [number, number];
}

const gdalType: Record<SampleType, string> = {
  uint8: 'Byte',
  int8: 'Byte', // GDAL 3.6 has no Int8: a Byte band with PIXELTYPE=SIGNEDBYTE
  uint16: 'UInt16',
  int16: 'Int16',
  uint32: 'UInt32',
  int32: 'Int32',
  float32: 'Float32',
  float64: 'Float64',
};

const bytesPer: Record<SampleType, number> = { uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8 };

function packBand(type: SampleType, v: ArrayLike<number>): Buffer {
  const n = v.length;
  const buf = Buffer.alloc(n * bytesPer[type]);
  for (let i = 0; i < n; i++) {
    const x = v[i]!;
    switch (type) {
      case 'uint8':
        buf.writeUInt8(x, i);
        break;
      case 'int8':
        buf.writeInt8(x, i);
        break;
      case 'uint16':
        buf.writeUInt16LE(x, i * 2);
        break;
      case 'int16':
        buf.writeInt16LE(x, i * 2);
        break;
      case 'uint32':
        buf.writeUInt32LE(x, i * 4);
        break;
      case 'int32':
        buf.writeInt32LE(x, i * 4);
        break;
      case 'float32':
        buf.writeFloatLE(x, i * 4);
        break;
      case 'float64':
        buf.writeDoubleLE(x, i * 8);
        break;
    }
  }
  return buf;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const gdalNum = (x: number) => (Number.isNaN(x) ? 'nan' : String(x));

/** Makes a private temporary directory, removed when the test process exits at the latest. */
export async function tempDir(prefix = 'geotfr-raster-'): Promise<string> {
  return removeOnExit(await fs.mkdtemp(path.join(os.tmpdir(), prefix)));
}

/** Writes a GeoTIFF/COG with the GDAL CLI. Throws if GDAL fails. */
export async function writeGeoTiff(file: string, spec: GeoTiffSpec): Promise<void> {
  const { width: w, height: h, type } = spec;
  if (!spec.bands.length) throw new Error('writeGeoTiff: at least one band');
  for (const b of spec.bands) if (b.length !== w * h) throw new Error(`writeGeoTiff: band has ${b.length} samples, expected ${w * h}`);
  const dir = await tempDir('geotfr-wgt-');
  try {
    const bin = path.join(dir, 'data.bin');
    await fs.writeFile(bin, Buffer.concat(spec.bands.map((b) => packBand(type, b))));
    const [a, b, c, d, e, f] = spec.affine;
    const bp = bytesPer[type];
    const bandXml = spec.bands
      .map((_, i) =>
        [
          `  <VRTRasterBand dataType="${gdalType[type]}" band="${i + 1}" subClass="VRTRawRasterBand">`,
          spec.bandNames?.[i] !== undefined ? `    <Description>${xml(spec.bandNames[i]!)}</Description>` : '',
          spec.nodata !== undefined ? `    <NoDataValue>${gdalNum(spec.nodata)}</NoDataValue>` : '',
          `    <SourceFilename relativeToVRT="1">data.bin</SourceFilename>`,
          `    <ImageOffset>${i * w * h * bp}</ImageOffset>`,
          `    <PixelOffset>${bp}</PixelOffset>`,
          `    <LineOffset>${w * bp}</LineOffset>`,
          `    <ByteOrder>LSB</ByteOrder>`,
          `  </VRTRasterBand>`,
        ]
          .filter(Boolean)
          .join('\n'),
      )
      .join('\n');
    const vrt = path.join(dir, 'src.vrt');
    await fs.writeFile(
      vrt,
      `<VRTDataset rasterXSize="${w}" rasterYSize="${h}">\n  <GeoTransform>${[c, a, b, f, d, e].map(String).join(', ')}</GeoTransform>\n${bandXml}\n</VRTDataset>\n`,
    );
    const layout = spec.layout ?? 'GTiff';
    const compress = spec.compress ?? 'NONE';
    let input = vrt;
    if (type === 'int8' && layout === 'COG') {
      // GDAL 3.6's COG driver has no PIXELTYPE option but keeps a signed-byte source signed.
      input = path.join(dir, 'signed.tif');
      await run('gdal_translate', ['-q', '-co', 'PIXELTYPE=SIGNEDBYTE', vrt, input]);
    }
    const args = ['-q', '-of', layout, '-a_srs', spec.crs];
    if (type === 'int8' && layout !== 'COG') args.push('-co', 'PIXELTYPE=SIGNEDBYTE');
    if (layout === 'COG') {
      args.push('-co', `COMPRESS=${compress}`);
      if (spec.blockSize) args.push('-co', `BLOCKSIZE=${spec.blockSize}`);
      if (spec.predictor && spec.predictor !== 1) args.push('-co', `PREDICTOR=${spec.predictor === 3 ? 'FLOATING_POINT' : 'YES'}`);
    } else {
      args.push('-co', `COMPRESS=${compress}`);
      if (spec.blockSize) args.push('-co', 'TILED=YES', '-co', `BLOCKXSIZE=${spec.blockSize}`, '-co', `BLOCKYSIZE=${spec.blockSize}`);
      else if (spec.rowsPerStrip) args.push('-co', `BLOCKYSIZE=${spec.rowsPerStrip}`);
      if (spec.predictor) args.push('-co', `PREDICTOR=${spec.predictor}`);
      if (spec.interleave) args.push('-co', `INTERLEAVE=${spec.interleave}`);
      if (spec.pixelIsPoint) args.push('--config', 'GTIFF_POINT_GEO_IGNORE', 'FALSE', '-mo', 'AREA_OR_POINT=Point');
    }
    args.push(...(spec.extraArgs ?? []), input, file);
    await fs.rm(file, { force: true });
    await run('gdal_translate', args);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** GDAL geotransform [c, a, b, f, d, e] → mixer affine [a, b, c, d, e, f]. */
const fromGdal = (gt: number[]): Affine => [gt[1]!, gt[2]!, gt[0]!, gt[4]!, gt[5]!, gt[3]!];

/** Reads a raster with GDAL: metadata from `gdalinfo -json`, samples via ENVI Float64. */
export async function readRasterWithGdal(file: string): Promise<GdalRaster> {
  const info = JSON.parse((await run('gdalinfo', ['-json', '-proj4', file])).stdout.toString());
  const [width, height] = info.size as [number, number];
  const dir = await tempDir('geotfr-rgt-');
  try {
    const out = path.join(dir, 'out.envi');
    // -a_ullr drops the georeferencing (read above): ENVI cannot store rotated geotransforms.
    await run('gdal_translate', [
      '-q',
      '-of',
      'ENVI',
      '-ot',
      'Float64',
      '-co',
      'INTERLEAVE=BSQ',
      '-a_ullr',
      '0',
      String(height),
      String(width),
      '0',
      file,
      out,
    ]);
    const raw = await fs.readFile(out);
    const n = width * height;
    const bands = (info.bands as any[]).map((bi, i) => {
      const arr = new Float64Array(n);
      for (let k = 0; k < n; k++) arr[k] = raw.readDoubleLE((i * n + k) * 8);
      // GDAL < 3.7 reads SIGNEDBYTE bands as unsigned bytes.
      if (bi.type === 'Byte' && bi.metadata?.IMAGE_STRUCTURE?.PIXELTYPE === 'SIGNEDBYTE') for (let k = 0; k < n; k++) if (arr[k]! > 127) arr[k]! -= 256;
      return arr;
    });
    const epsg = info.stac?.['proj:epsg'];
    const crs = typeof epsg === 'number' ? `EPSG:${epsg}` : (info.coordinateSystem?.wkt ?? '');
    const nodata = (info.bands as any[]).map((bi) => {
      if (bi.noDataValue === undefined) return undefined;
      const v = bi.noDataValue;
      let x = typeof v === 'string' ? (v.toLowerCase() === 'nan' ? NaN : Number(v)) : Number(v);
      if (bi.type === 'Byte' && bi.metadata?.IMAGE_STRUCTURE?.PIXELTYPE === 'SIGNEDBYTE' && x > 127) x -= 256;
      // gdalinfo prints Float32 nodata with 8 significant digits; GDAL masks against the float32 value.
      return bi.type === 'Float32' ? Math.fround(x) : x;
    });
    return {
      width,
      height,
      bands,
      affine: fromGdal(info.geoTransform),
      crs,
      nodata,
      bandNames: (info.bands as any[]).map((bi) => (bi.description ? String(bi.description) : undefined)),
      layout: info.metadata?.IMAGE_STRUCTURE?.LAYOUT === 'COG' ? 'COG' : 'GTiff',
      blockSize: info.bands[0].block as [number, number],
    };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
