#!/bin/bash
# Copy the ZXing decoder the driver app serves from node_modules into static/vendor/zxing/.
# Run after changing the @zxing/library version in package.json (and `npm install`).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(node -p "require('./node_modules/@zxing/library/package.json').version")
rm -f static/vendor/zxing/zxing-library-*.min.js
cp "node_modules/@zxing/library/umd/index.min.js" "static/vendor/zxing/zxing-library-${version}.min.js"
cp node_modules/@zxing/library/LICENSE static/vendor/zxing/LICENSE
echo "static/vendor/zxing/zxing-library-${version}.min.js"
