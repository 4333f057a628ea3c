"""GDAL's warper as the oracle for shared/grid/resample.ts (docs/semantics.md §11): warps each job's
source raster onto a destination grid given exactly (CRS, geotransform, size) with
gdal.Warp(errorThreshold=0, XSCALE=1, YSCALE=1, no overviews), i.e.
`gdalwarp -et 0 -wo XSCALE=1 -wo YSCALE=1 -ovr NONE -r ALG` into a dataset made with that transform
(gdalwarp's -te/-ts would re-derive it).

argv[1]: a JSON file {"jobs": [{"src": {"path", "width", "height", "gt", "crs", "nodata"} or
          {"files": [GeoTIFF paths, mosaic order: the last valid wins], "band"},
          "dst": {"path", "width", "height", "gt", "crs"}, "alg"}]}, where "gt" is GDAL's
          [c, a, b, f, d, e] and paths name raw little-endian float64 rasters (src read, dst written).
Destination pixels GDAL leaves without a value are NaN.
"""
import json
import sys

import numpy as np
from osgeo import gdal, osr

gdal.UseExceptions()


def dataset(width, height, gt, crs, nodata, values):
    ds = gdal.GetDriverByName("MEM").Create("", width, height, 1, gdal.GDT_Float64)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.SetFromUserInput(crs)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(values)
    return ds


def main():
    with open(sys.argv[1]) as f:
        jobs = json.load(f)["jobs"]
    for job in jobs:
        s, d = job["src"], job["dst"]
        nodata = s.get("nodata")
        if "files" in s:
            # One band of real files, as gdalwarp reads them (their own nodata unless given).
            src = [gdal.Translate("", p, format="VRT", bandList=[s.get("band", 1)]) for p in s["files"]]
        else:
            values = np.fromfile(s["path"], dtype="<f8").reshape(s["height"], s["width"])
            src = dataset(s["width"], s["height"], s["gt"], s["crs"], nodata, values)
        dst = dataset(d["width"], d["height"], d["gt"], d["crs"], float("nan"), np.full((d["height"], d["width"]), np.nan))
        opts = gdal.WarpOptions(
            resampleAlg=job["alg"],
            errorThreshold=0,
            warpOptions=["XSCALE=1", "YSCALE=1"],
            srcNodata=nodata,
            dstNodata=float("nan"),
            overviewLevel="NONE",
        )
        gdal.Warp(dst, src, options=opts)
        dst.GetRasterBand(1).ReadAsArray().astype("<f8").tofile(d["path"])


main()
